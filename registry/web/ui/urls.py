"""Where the web UI's pages are. `/-/` can't be a workspace (a slug starts with a letter or digit),
and `/-/_/` holds the pages that belong to no workspace (sign-in, tokens)."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from ...links import UI as PREFIX
from ...links import UI_OWN as OWN
from ...links import signin_path


def _q(value: str) -> str:
    return quote(value, safe="")


def home() -> str:
    return f"{PREFIX}/"


def signin(next_: str | None = None) -> str:
    return f"{OWN}/signin" + (f"?{urlencode({'next': next_})}" if next_ else "")


def signout() -> str:
    return f"{OWN}/signout"


def link(secret: str) -> str:
    return signin_path(secret)


def tokens() -> str:
    return f"{OWN}/tokens"


def revoke_token(token_id: str) -> str:
    return f"{OWN}/tokens/{_q(token_id)}/revoke"


def end_session(session_id: str) -> str:
    return f"{OWN}/sessions/{_q(session_id)}/end"


def end_other_sessions() -> str:
    return f"{OWN}/sessions/end-others"


def index_as_of(ws: str, commit: str) -> str:
    """The workspace's Simple index as it stood at a commit (pip's --index-url for then)."""
    return f"/{_q(ws)}/@{_q(commit)}/"


def workspace(ws: str) -> str:
    return f"{PREFIX}/{_q(ws)}/"


def project(ws: str, key: str) -> str:
    return f"{PREFIX}/{_q(ws)}/projects/{_q(key)}/"


def repository(ws: str, repo: str) -> str:
    return f"{PREFIX}/{_q(ws)}/repos/{_q(repo)}/"


def history(ws: str, repo: str | None = None) -> str:
    return (repository(ws, repo) if repo else workspace(ws)) + "history"


def commit(ws: str, commit_id: str) -> str:
    return f"{PREFIX}/{_q(ws)}/commits/{_q(commit_id)}"


def new_package(ws: str) -> str:
    return f"{PREFIX}/{_q(ws)}/new"


def package(ws: str, name: str) -> str:
    return f"{PREFIX}/{_q(ws)}/packages/{_q(name)}/"


def version(ws: str, name: str, version_: str) -> str:
    return f"{package(ws, name)}{_q(version_)}/"


def package_history(ws: str, name: str, version_: str | None = None) -> str:
    return (version(ws, name, version_) if version_ else package(ws, name)) + "history"


def action(ws: str, name: str, verb: str, version_: str | None = None) -> str:
    """delete (a package or a version), yank, unyank: GET is the confirmation, POST does it."""
    return (version(ws, name, version_) if version_ else package(ws, name)) + verb


def with_query(path: str, **params) -> str:
    kept = {k: v for k, v in params.items() if v not in (None, "") and not (k == "page" and v == 1)}
    return path + (f"?{urlencode(kept)}" if kept else "")


def download(ws: str, name: str, version_: str, filename: str) -> str:
    return f"{version(ws, name, version_)}files/{_q(filename)}"
