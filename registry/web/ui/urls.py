"""Where the web UI's pages are, each declared once: its handler is registered at the route's path and
under its name (`@get(urls.PACKAGE.path, name=urls.PACKAGE.name)`), and every link to it is built from
it, by the route (`urls.PACKAGE.link(ws=..., name=...)`) or, in a template, by its name
(`url_for('ui.package', ws=..., name=...)`). `/-/` can't be a workspace (a slug starts with a letter
or digit), and `/-/_/` holds the pages that belong to no workspace (sign-in, tokens).

A path that ends in `/` is a page with pages below it (a workspace, a package, a version): its links
keep the `/`, as they always had (Litestar answers with or without it)."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from ...links import SIGNIN_LINK, Route
from ...links import UI as PREFIX
from ...links import UI_OWN as OWN

ROUTES: dict[str, Route] = {}  # by name


def _route(name: str, path: str) -> Route:
    ROUTES[name] = route = Route(name, path)
    return route


ROUTES[SIGNIN_LINK.name] = SIGNIN_LINK  # (declared with the links printed outside a request)
_WS = f"{PREFIX}/{{ws:str}}"
_PACKAGE = f"{_WS}/packages/{{name:str}}"
_VERSION = f"{_PACKAGE}/{{version:str}}"

# --- pages of no workspace ---------------------------------------------------------------------
HOME = _route("ui.home", f"{PREFIX}/")
SIGNIN = _route("ui.signin", f"{OWN}/signin")  # a query's `next`: where to go after
SIGNOUT = _route("ui.signout", f"{OWN}/signout")
TOKENS = _route("ui.tokens", f"{OWN}/tokens")
REVOKE_TOKEN = _route("ui.revoke-token", f"{OWN}/tokens/{{token_id:str}}/revoke")
END_SESSION = _route("ui.end-session", f"{OWN}/sessions/{{session_id:str}}/end")
END_OTHER_SESSIONS = _route("ui.end-other-sessions", f"{OWN}/sessions/end-others")
DEFAULT_WORKSPACE = _route("ui.default-workspace", f"{OWN}/default-workspace")
YOUR_NAME = _route("ui.your-name", f"{OWN}/name")

# --- a workspace's pages -----------------------------------------------------------------------
WORKSPACE = _route("ui.workspace", f"{_WS}/")
PROJECT = _route("ui.project", f"{_WS}/projects/{{key:str}}/")
REPOSITORY = _route("ui.repository", f"{_WS}/repos/{{repo:str}}/")
HISTORY = _route("ui.history", f"{_WS}/history")
REPOSITORY_HISTORY = _route("ui.repository-history", f"{_WS}/repos/{{repo:str}}/history")
COMMIT = _route("ui.commit", f"{_WS}/commits/{{commit_id:str}}")
NEW_PACKAGE = _route("ui.new-package", f"{_WS}/new")  # a query's `repo`: the one selected
PACKAGE = _route("ui.package", f"{_PACKAGE}/")
PACKAGE_HISTORY = _route("ui.package-history", f"{_PACKAGE}/history")
DELETE_PACKAGE = _route("ui.delete-package", f"{_PACKAGE}/delete")
VERSION = _route("ui.version", f"{_VERSION}/")
VERSION_HISTORY = _route("ui.version-history", f"{_VERSION}/history")
DELETE_VERSION = _route("ui.delete-version", f"{_VERSION}/delete")
YANK = _route("ui.yank", f"{_VERSION}/yank")
UNYANK = _route("ui.unyank", f"{_VERSION}/unyank")
DOWNLOAD = _route("ui.download", f"{_VERSION}/files/{{filename:str}}")

# --- administration (settings.py): a workspace's admins, a repository's, a package's -------------
SETTINGS = _route("ui.settings", f"{_WS}/settings/")  # people and permissions; posting grants a role
SETTINGS_REVOKE = _route("ui.settings-revoke", f"{_WS}/settings/revoke")  # a query's `email` and `on`
SETTINGS_PROJECTS = _route("ui.settings-projects", f"{_WS}/settings/projects")
NEW_PROJECT = _route("ui.new-project", f"{_WS}/settings/projects/new")
NEW_REPOSITORY = _route("ui.new-repository", f"{_WS}/settings/repos/new")
RENAME_WORKSPACE = _route("ui.rename-workspace", f"{_WS}/settings/name")
DELETE_WORKSPACE = _route("ui.delete-workspace", f"{_WS}/settings/delete")  # GET confirms, POST deletes
REMOVE_MEMBER = _route("ui.remove-member", f"{_WS}/settings/members/remove")  # a query's `email`
RENAME_PROJECT = _route("ui.rename-project", f"{_WS}/settings/projects/{{key:str}}/name")
DELETE_PROJECT = _route("ui.delete-project", f"{_WS}/settings/projects/{{key:str}}/delete")
SET_UUID = _route("ui.set-uuid", f"{_WS}/settings/uuid")  # a form's `repo`: whose (none: the workspace's)
SETTINGS_PIPELINES = _route("ui.settings-pipelines", f"{_WS}/settings/pipelines")  # posting trusts an issuer
UNTRUST = _route("ui.untrust", f"{_WS}/settings/pipelines/remove")  # a query's `issuer`
SETTINGS_STORAGE = _route("ui.settings-storage", f"{_WS}/settings/storage")  # posting sets a retention policy
REMOVE_RETENTION = _route("ui.remove-retention", f"{_WS}/settings/storage/remove")  # a query's `policy`
SETTINGS_WEBHOOKS = _route("ui.settings-webhooks", f"{_WS}/settings/webhooks")  # posting adds a hook
REMOVE_WEBHOOK = _route("ui.remove-webhook", f"{_WS}/settings/webhooks/remove")  # a query's `name`
REPLAY_WEBHOOK = _route("ui.replay-webhook", f"{_WS}/settings/webhooks/replay")  # a query's `name`, a form's `start`
REPOSITORY_PEOPLE = _route("ui.repository-people", f"{_WS}/repos/{{repo:str}}/people")  # posting grants
REPOSITORY_REVOKE = _route("ui.repository-revoke", f"{_WS}/repos/{{repo:str}}/people/revoke")  # `email`
RENAME_REPOSITORY = _route("ui.rename-repository", f"{_WS}/repos/{{repo:str}}/rename")  # a new slug
DELETE_REPOSITORY = _route("ui.delete-repository", f"{_WS}/repos/{{repo:str}}/delete")
REPOSITORY_PIPELINES = _route("ui.repository-pipelines",
                              f"{_WS}/repos/{{repo:str}}/pipelines")  # posting lets a `source`'s pipelines read it
REPOSITORY_PIPELINES_REVOKE = _route("ui.repository-pipelines-revoke",
                                     f"{_WS}/repos/{{repo:str}}/pipelines/revoke")  # a query's `source`
CREATE_ON_PUBLISH = _route("ui.create-on-publish", f"{_WS}/repos/{{repo:str}}/create-on-publish")
PACKAGE_POLICY = _route("ui.package-policy", f"{_PACKAGE}/policy")


def url_for(route: str, /, **parameters: str | None) -> str:
    """The link to the page named ``route`` (the templates' `url_for`: Litestar's, but encoded as the
    routes' links are, and needing no request, so macros can use it too)."""
    return ROUTES[route].link(**parameters)


def with_query(path: str, **params: object) -> str:
    """``path`` with a query of the ``params`` that say something (a page's first page says nothing)."""
    kept = {k: v for k, v in params.items() if v not in (None, "") and not (k == "page" and v == 1)}
    return path + (f"?{urlencode(kept)}" if kept else "")


def index_as_of(ws: str, commit: str) -> str:
    """The workspace's Simple index as it stood at a commit (pip's --index-url for then): the Simple
    API's route `/<ws>/<project>/` with `@<commit>` for a project (web/simple.py), not a page of the UI."""
    return f"/{quote(ws, safe='')}/@{quote(commit, safe='')}/"
