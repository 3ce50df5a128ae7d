"""Sessions by token scope: every change a web session (or an API token) asks for is checked against
the token it came from, and signing out ends a session everywhere.

The walks take the state-changing routes from the app's own route table (plus the front door's
upload, which has no route), so a form or route added later is walked too, or fails this test until
it is taught what to fill its path with. The person walking administers the repository, so only the
token's scope can refuse them: with a read-scoped session or token every change is a 403 that names
the scope, and nothing is committed; with a write-scoped one (or a one-time link's session, which
has write scope) every change is made.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx
import msgspec
import pytest

from registry import identity, layout, operations
from registry.audit import Action
from registry.config import Settings
from registry.errors import Forbidden, Unauthorized
from registry.operations import signin
from registry.operations._common import make_change
from registry.reads import records
from registry.web.ui.urls import PREFIX
from tests.support.helpers import make_wheel, start_server
from tests.support.world import WS, publish, upload_form

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
OWNER = "owner@acme.test"  # admin of acme/utils: whatever is refused them here, their token's scope refused
OP = identity.operator()
# The routes by which a session starts or ends itself: what even a read-scoped one may do (below).
OWN_SESSION = {("POST", f"{PREFIX}/_/signin"), ("POST", f"{PREFIX}/_/signout"), ("POST", f"{PREFIX}/_/link/{{secret}}")}
FRONT_DOOR = [("POST", "/{ws}/")]  # uploads: taken by the front door before routing (front.py)


def state_changing_routes(client) -> list[tuple[str, str]]:
    """(method, path template) of every route that may change something, from the app's route table."""
    found = [(m, re.sub(r"\{(\w+):[^}]*\}", r"{\1}", route.path))
             for route in client.served.app.routes for m in sorted(getattr(route, "methods", set()) & WRITES)]
    assert len(found) >= 15, found  # (the table was read)
    return found + FRONT_DOOR


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Its webhooks are to http://127.0.0.1:9 (never delivered): allowed."""
    return msgspec.structs.replace(settings, webhooks_private=True)


@dataclass
class Stage:
    """What one walked request acts on, made fresh for it: another token and another session of the
    walker (to revoke, to end), a package to delete, versions to yank, un-yank and delete."""

    token_id: str
    session_id: str
    link: str


def stage(world, tmp_path, n: int) -> Stage:
    reg = world.reg
    _, token = operations.create_token(reg, OP, "cli", OWNER, "write", label=f"other {n}")
    other = operations.start_session(reg, identity.check_token(reg.snapshot(), OWNER, world.tokens[OWNER])).session
    for version in ("1.0", "1.1", "1.2"):
        publish(reg, OP, make_wheel(tmp_path, "Acme.Utils", f"{n}.{version}"))
    operations.yank(reg, OP, "cli", WS, "acme-utils", f"{n}.1.1", "to un-yank")
    operations.create_package(reg, OP, "cli", WS, f"doomed-{n}", "utils")
    link, _ = operations.create_signin_link(reg, OP, "cli", OWNER)
    # what administering acts on: a member with a grant of each kind (to take away), a person with none
    # (to give one), a project with a repository (to rename, to grant on), an empty one and an empty
    # workspace (to delete)
    for person in (f"walk-{n}@acme.test", f"fresh-{n}@acme.test"):
        operations.create_user(reg, OP, "cli", person)
    operations.create_project(reg, OP, "cli", WS, f"P{n}")
    operations.create_project(reg, OP, "cli", WS, f"E{n}")
    operations.create_repository(reg, OP, "cli", WS, f"r-{n}", f"P{n}")
    operations.grant(reg, OP, "cli", WS, f"walk-{n}@acme.test", "admin")
    operations.grant(reg, OP, "cli", WS, f"walk-{n}@acme.test", "read", project=f"P{n}")
    operations.grant(reg, OP, "cli", WS, f"walk-{n}@acme.test", "read", repository=f"r-{n}")
    operations.create_workspace(reg, OP, "cli", f"empty-{n}", admins=[WS_ADMIN])
    operations.set_trust(reg, OP, "cli", WS, f"https://staged-{n}.example/oidc")  # (an issuer to stop trusting)
    operations.grant_pipelines(reg, OP, "cli", WS, f"r-{n}", "public-lib")  # (pipelines to stop reading it)
    for policy in (f"staged-{n}", f"doomed-{n}"):  # (retention policies to remove: the UI's, the API's)
        operations.set_retention(reg, OP, "cli", WS, policy, pattern="acme-*", keep_newest=9)
    if not reg.snapshot().exists(layout.webhook(WS, HOOK)):  # (a webhook to replace, replay, remove)
        operations.add_webhook(reg, OP, "cli", WS, HOOK, "http://127.0.0.1:9/hook", ["publish"])
    STAGED_HEADS[n] = reg.ledger.head()  # (a commit to replay a webhook from)
    return Stage(token.id, other.id, link)


HOOK = "acme-utils"  # (the name the walk fills {name} with)
STAGED_HEADS: dict[int, str] = {}


def target(method: str, path: str, s: Stage, n: int) -> str:
    """The path with its parameters filled so that the request, if allowed, changes something."""
    last = path.rstrip("/").rsplit("/", 1)[-1]
    deleting_package = path.endswith("{name}/delete") or (method == "DELETE" and path.endswith("{name}"))
    version = {"yank": "1.1" if method == "DELETE" else "1.0", "unyank": "1.1"}.get(last, "1.2")
    name = HOOK if "/webhooks/" in path else f"doomed-{n}" if deleting_package else "acme-utils"
    values = {"ws": WS, "name": name, "version": f"{n}.{version}",
              "token_id": s.token_id, "session_id": s.session_id, "secret": s.link, "rest": "git-receive-pack",
              "key": f"E{n}" if (method, last) == ("DELETE", "{key}") or path.endswith("{key}/delete") else f"P{n}",
              "repo": f"r-{n}", "source": "public-lib" if method == "DELETE" else "utils",
              "email": OWNER if path.endswith("/default-workspace") else WS_ADMIN
              if path == "/api/users/{email}" else f"{'fresh' if method == 'PUT' else 'walk'}-{n}"
                                                                      "@acme.test"}
    if (method, path) in (("DELETE", "/api/workspaces/{ws}"), ("POST", f"{PREFIX}/{{ws}}/settings/delete")):
        values["ws"] = f"empty-{n}"

    def fill(m: re.Match) -> str:
        if m.group(1) not in values:
            pytest.fail(f"{method} {path}: this walk can't fill its parameter {m.group(1)!r}; teach target() "
                        "a value that reaches something real, so the route is walked")
        return values[m.group(1)]

    return re.sub(r"\{(\w+)\}", fill, path)


WS_ADMIN = "wsadmin@acme.test"
# API routes only a workspace admin may use, and a body each would change something with.
WORKSPACE_ADMIN_ROUTES = {
    "/api/workspaces/{ws}/upstream": {"op": "cooldown", "days": 3},
    "/api/workspaces/{ws}": {"name": "Walked"}, "/api/users/{email}": {"name": "Walked"},
    "/api/workspaces/{ws}/members/{email}": None, "/api/workspaces/{ws}/admins/{email}": None,
    "/api/workspaces/{ws}/projects": {"key": "WALKED"}, "/api/workspaces/{ws}/projects/{key}": {"name": "Walked"},
    "/api/workspaces/{ws}/projects/{key}/grants/{email}": {"role": "read"},
    "/api/workspaces/{ws}/repositories": {"slug": "walked", "project": "CORE"},
    "/api/workspaces/{ws}/repositories/{repo}": {"slug": "walked-renamed"},
    "/api/workspaces/{ws}/repositories/{repo}/grants/{email}": {"role": "read"},
    "/api/workspaces/{ws}/repositories/{repo}/pipeline-readers/{source}": None,
    "/api/workspaces/{ws}/retention/{name}": {"pattern": "acme-*", "keep_newest": 4},  # (the staged one's: 9)
    "/api/workspaces/{ws}/webhooks/{name}": lambda n, method: None if method == "DELETE" else {
        "url": "http://127.0.0.1:9/walked", "events": ["publish"]},
    "/api/workspaces/{ws}/webhooks/{name}/replay": lambda n, method: {"start": STAGED_HEADS[n]},
}

# The web UI's administration forms (a workspace's settings, a repository's, a package's policy): as a
# workspace admin, with fields (and a query) each would change something with.
_S, _R = f"{PREFIX}/{{ws}}/settings", f"{PREFIX}/{{ws}}/repos/{{repo}}"
WORKSPACE_ADMIN_FORMS = {
    _S: lambda n: {"email": f"fresh-{n}@acme.test", "on": f"project:P{n}", "role": "read"},
    f"{_S}/revoke": lambda n: {"?email": f"walk-{n}@acme.test", "?on": f"project:P{n}"},
    f"{_S}/members/remove": lambda n: {"?email": f"walk-{n}@acme.test"},
    f"{_S}/name": lambda n: {"name": f"Walked {n}"}, f"{_S}/delete": lambda n: {},
    f"{_S}/projects/new": lambda n: {"key": f"W{n}"},
    f"{_S}/projects/{{key}}/name": lambda n: {"name": f"Walked {n}"}, f"{_S}/projects/{{key}}/delete": lambda n: {},
    f"{_S}/repos/new": lambda n: {"slug": f"walked-{n}", "project": f"P{n}", "create_on_publish": "on"},
    f"{_S}/uuid": lambda n: {"repo": f"r-{n}", "uuid": f"{{00000000-0000-4000-8000-{n:012d}}}"},
    f"{_S}/pipelines": lambda n: {"issuer": f"https://walked-{n}.example/oidc"},
    f"{_S}/pipelines/remove": lambda n: {"?issuer": f"https://staged-{n}.example/oidc"},
    f"{_R}/people": lambda n: {"email": f"fresh-{n}@acme.test", "role": "read"},
    f"{_R}/people/revoke": lambda n: {"?email": f"walk-{n}@acme.test"},
    f"{_R}/pipelines": lambda n: {"source": "utils"},
    f"{_R}/pipelines/revoke": lambda n: {"?source": "public-lib"},
    f"{_R}/rename": lambda n: {"slug": f"r-{n}-renamed"}, f"{_R}/delete": lambda n: {},
    f"{_R}/create-on-publish": lambda n: {"create_on_publish": "on"},
    f"{PREFIX}/{{ws}}/packages/{{name}}/policy": lambda n: {"branches": f"walked-{n}"},
    f"{_S}/storage": lambda n: {"name": f"walked-{n}", "pattern": "acme-*", "keep_newest": "5"},
    f"{_S}/storage/remove": lambda n: {"?policy": f"staged-{n}"},
    f"{_S}/webhooks": lambda n: {"name": f"walked-{n}", "url": "http://127.0.0.1:9/hook", "events": "publish"},
    f"{_S}/webhooks/remove": lambda n: {"?name": HOOK},
    f"{_S}/webhooks/replay": lambda n: {"?name": HOOK, "start": STAGED_HEADS[n]},
}

FORM = {"label": "walked", "scope": "write", "name": "walked-new", "repository": "utils", "reason": "walked",
        "workspace": WS}


async def sign_in_with(client, world, secret: str, email: str = OWNER) -> None:
    client.cookies.clear()
    page = await client.get(f"{PREFIX}/_/signin")
    r = await client.post(f"{PREFIX}/_/signin", data={"csrf": CSRF.search(page.text).group(1), "email": email,
                                                      "token": secret}, follow_redirects=False)
    assert r.status_code == 303, r.text


async def sign_in_by_link(client, world, email: str = OWNER) -> None:
    client.cookies.clear()
    link, _ = operations.create_signin_link(world.reg, OP, "cli", email)
    page = await client.get(f"{PREFIX}/_/link/{link}")
    r = await client.post(f"{PREFIX}/_/link/{link}", data={"csrf": CSRF.search(page.text).group(1)},
                          follow_redirects=False)
    assert r.status_code == 303, r.text


async def post_form(client, method: str, path: str, n: int, fields: dict[str, str] | None = None):
    csrf = CSRF.search((await client.get(f"{PREFIX}/_/tokens")).text).group(1)
    fields = fields if fields is not None else {**FORM, "name": f"walked-new-{n}"}
    query = {k[1:]: v for k, v in fields.items() if k.startswith("?")}
    data = {k: v for k, v in fields.items() if not k.startswith("?")} | {"csrf": csrf}
    return await client.request(method, path, params=query, data=data, follow_redirects=False)


@pytest.mark.parametrize("how", ["read token", "write token", "link"])
async def test_every_form_a_session_can_post_is_checked_against_its_tokens_scope(client, world, tmp_path, how,
                                                                                 monkeypatch):
    monkeypatch.setattr(signin, "SIGN_INS_PER_MINUTE", 1000)  # (it signs in afresh for every form)
    read_secret, _ = operations.create_token(world.reg, OP, "cli", OWNER, "read", label="read only")
    admin_read_secret, _ = operations.create_token(world.reg, OP, "cli", WS_ADMIN, "read", label="read only")
    forms = [(m, p) for m, p in state_changing_routes(client) if p.startswith(PREFIX + "/")]
    assert {(m, p) for m, p in OWN_SESSION} <= set(forms)
    walked, wrong = 0, []  # (every member of the class is named, not just the first)
    for n, (method, path) in enumerate(forms, start=1):
        if (method, path) in OWN_SESSION:
            continue  # (how a session starts and ends: test_a_read_session_may_sign_itself_out_and_nothing_else)
        s = stage(world, tmp_path, n)
        admin_form = WORKSPACE_ADMIN_FORMS.get(path)  # (what only an admin may do: as one, with that scope)
        who, secrets = (WS_ADMIN, (admin_read_secret, world.tokens[WS_ADMIN])) if admin_form else \
            (OWNER, (read_secret, world.tokens[OWNER]))
        if how == "link":
            await sign_in_by_link(client, world, who)
        else:
            await sign_in_with(client, world, secrets[0] if how == "read token" else secrets[1], who)
        head = world.reg.ledger.head()
        r = await post_form(client, method, target(method, path, s, n), n, admin_form(n) if admin_form else None)
        committed = world.reg.ledger.head() != head
        if how == "read token":
            if committed:
                wrong.append(f"{method} {path}: committed for a read-scoped session ({r.status_code})")
            elif not (r.status_code == 403 and "read scope" in r.text
                      and "sign in with a write-scoped API token" in r.text):
                wrong.append(f"{method} {path}: {r.status_code}, not a 403 that names the read scope and what to do")
        elif r.status_code not in (201, 303) or not committed:
            wrong.append(f"{method} {path}: {r.status_code} and {'a' if committed else 'no'} commit "
                         f"for a {how} session")
        walked += 1
    assert not wrong, "\n".join(wrong)
    assert walked >= 8


@pytest.mark.parametrize("scope", ["read", "write"])
async def test_every_api_route_and_the_upload_check_the_tokens_scope(client, world, tmp_path, scope, monkeypatch):
    """The same rule, the same words, for an API token as for a session signed in with it."""
    monkeypatch.setattr(signin, "SIGN_INS_PER_MINUTE", 1000)  # (each route's stage signs in afresh)
    secret = world.tokens[OWNER]
    if scope == "read":
        secret, _ = operations.create_token(world.reg, OP, "cli", OWNER, "read")
    basic = httpx.BasicAuth(OWNER, secret)
    wsadmin_secret = world.tokens[WS_ADMIN]
    if scope == "read":
        wsadmin_secret, _ = operations.create_token(world.reg, OP, "cli", WS_ADMIN, "read")
    routes = [(m, p) for m, p in state_changing_routes(client) if not p.startswith(PREFIX + "/")]
    assert ("POST", "/api/workspaces/{ws}/packages") in routes and ("POST", "/{ws}/") in routes
    wrong = []
    for n, (method, path) in enumerate(routes, start=100):
        s = stage(world, tmp_path, n)
        url = target(method, path, s, n)
        head = world.reg.ledger.head()
        if path == "/{ws}/":
            fields, files = upload_form(make_wheel(tmp_path, "Acme.Utils", f"{n}.9"))
            r = await client.post(url, data=fields, files=files, auth=basic)
        elif path.startswith("/api/"):
            body = {"name": f"api-new-{n}",
                    "repository": "utils"} if method == "POST" and path.endswith("packages") else \
                ({"reason": "walked"} if method == "POST" else None)
            who = basic
            if path.endswith("/default-workspace"):  # (a change either way: set before clearing, clear before setting)
                operations.set_default_workspace(world.reg, OP, "cli", OWNER, WS if method == "DELETE" else None)
                head, body = world.reg.ledger.head(), {"workspace": WS} if method == "PUT" else None
            if path in WORKSPACE_ADMIN_ROUTES:  # (what only a workspace admin may do: as one, with that scope)
                body, who = WORKSPACE_ADMIN_ROUTES[path], httpx.BasicAuth(WS_ADMIN, wsadmin_secret)
                body = body(n, method) if callable(body) else body
            r = await client.request(method, url, json=body, auth=who)
        else:  # not a person's: exchanging a pipeline's token, fetching the ledger
            r = await client.request(method, url, json={"token": secret}, auth=basic)
            if not 400 <= r.status_code < 500 or world.reg.ledger.head() != head:
                wrong.append(f"{method} {path}: {r.status_code}, for a person's token")
            continue
        committed = world.reg.ledger.head() != head
        if scope == "read":
            if committed:
                wrong.append(f"{method} {path}: committed for a read-scoped token ({r.status_code})")
            elif not (r.status_code == 403 and "read scope" in r.text and "write-scoped API token" in r.text):
                wrong.append(f"{method} {path}: {r.status_code}, not a 403 that names the read scope and what to do")
        elif r.status_code not in (200, 201) or not committed:
            wrong.append(f"{method} {path}: {r.status_code} and {'a' if committed else 'no'} commit for a write token")
    assert not wrong, "\n".join(wrong)


async def test_a_session_cookie_is_no_credential_for_the_api_or_the_upload(client, world, tmp_path, monkeypatch):
    monkeypatch.setattr(signin, "SIGN_INS_PER_MINUTE", 1000)  # (each route's stage signs in afresh)
    await sign_in_with(client, world, world.tokens[OWNER])
    cookie = {"cookie": f"registry_session={client.cookies['registry_session']}"}  # (its path is /-: sent by hand)
    for n, (method, path) in enumerate(state_changing_routes(client), start=200):
        if path.startswith(PREFIX + "/"):
            continue
        url = target(method, path, stage(world, tmp_path, n), n)
        head = world.reg.ledger.head()
        r = await client.request(method, url, json={"name": "x", "repository": "utils", "reason": "x"}, headers=cookie)
        assert r.status_code in (401, 403, 404, 405, 422), (method, path, r.status_code)
        assert world.reg.ledger.head() == head, (method, path)


async def test_a_read_session_may_sign_itself_out_and_nothing_else(client, world):
    secret, _ = operations.create_token(world.reg, OP, "cli", OWNER, "read")
    await sign_in_with(client, world, world.tokens[OWNER])
    other = client.cookies["registry_session"]
    await sign_in_with(client, world, secret)
    page = await client.get(f"{PREFIX}/_/tokens")
    assert page.status_code == 200 and "read-scoped token" in page.text
    assert "Create token" not in page.text and "/revoke" not in page.text and "/end\"" not in page.text
    assert page.text.count(">this session<") == 1 and "Sign out everywhere else" not in page.text
    head = world.reg.ledger.head()
    r = await client.post(f"{PREFIX}/_/sessions/end-others", data={"csrf": CSRF.search(page.text).group(1)})
    assert r.status_code == 403 and "read scope" in r.text and world.reg.ledger.head() == head
    r = await client.post(f"{PREFIX}/_/signout", data={"csrf": CSRF.search(page.text).group(1)}, follow_redirects=False)
    assert r.status_code == 303 and world.reg.ledger.head() != head
    ended = world.reg.ledger.commit(world.reg.ledger.head())
    assert dict(ended.trailers)["Action"] == "sign-out" and ended.author_email == OWNER
    gone = client.cookies.get("registry_session")
    assert not gone
    client.cookies.set("registry_session", other, path="/-")  # (the write session it didn't end is still on)
    assert (await client.get(f"{PREFIX}/_/tokens")).status_code == 200


def test_the_commit_itself_refuses_what_a_scope_does_not_allow(world):
    """No verb can forget: every commit a verb builds passes `make_change`, which refuses for a read
    token all but its own session's start and end and the record of a file its download fetched
    from upstream, and for a witness, a replica or no one, all."""
    snap = world.reg.snapshot()
    read = identity.check_token(snap, "dev@acme.test", world.tokens["dev-readonly"])
    witness, _ = operations.create_token(world.reg, OP, "cli", "dev@acme.test", "witness")
    replica, _ = operations.create_token(world.reg, OP, "cli", "dev@acme.test", "replica")
    nobodies = [identity.check_token(world.reg.snapshot(), "__token__", t) for t in (witness, replica)]
    for action in Action:
        if action in (Action.SIGN_IN, Action.SIGN_OUT, Action.FETCH_UPSTREAM):
            make_change(read, "web", action, "start or end its own session, or record what its download fetched", {})
        else:
            with pytest.raises(Forbidden, match="read scope"):
                make_change(read, "web", action, f"do {action}", {})
        for who in nobodies:
            with pytest.raises(Forbidden, match=f"{who.scope} scope"):
                make_change(who, "api", action, f"do {action}", {})
        with pytest.raises(Unauthorized):
            make_change(identity.ANONYMOUS, "api", action, f"do {action}", {})


# --- sessions end everywhere ----------------------------------------------------------------------


async def test_revoking_the_token_ends_its_sessions_and_only_those(client, world):
    await sign_in_with(client, world, world.tokens[OWNER])
    first = client.cookies["registry_session"]
    await sign_in_with(client, world, world.tokens[OWNER])
    second = client.cookies["registry_session"]
    other_secret, other = operations.create_token(world.reg, OP, "cli", OWNER, "write", label="other")
    await sign_in_with(client, world, other_secret)
    page = await client.get(f"{PREFIX}/_/tokens")
    assert page.text.count("token <code>" + world.principal(OWNER).token_id) == 2
    token_id = world.principal(OWNER).token_id
    confirm = await client.get(f"{PREFIX}/_/tokens/{token_id}/revoke")
    r = await client.post(f"{PREFIX}/_/tokens/{token_id}/revoke", data={"csrf": CSRF.search(confirm.text).group(1)},
                          follow_redirects=False)
    assert r.status_code == 303
    assert (await client.get(f"{PREFIX}/_/tokens")).status_code == 200  # (this one rests on the other token)
    for cookie in (first, second):
        client.cookies.set("registry_session", cookie, path="/-")
        r = await client.get(f"{PREFIX}/_/tokens")
        assert r.status_code == 401 and "Sign in" in r.text


async def test_your_tokens_lists_your_sessions_and_ends_them(client, world):
    await sign_in_with(client, world, world.tokens[OWNER])
    phone = client.cookies["registry_session"]
    await sign_in_by_link(client, world)
    page = await client.get(f"{PREFIX}/_/tokens")
    assert "a sign-in link" in page.text and page.text.count(">this session<") == 1
    ids = re.findall(r"/-/_/sessions/([0-9a-f]{32})/end", page.text)
    assert len(ids) == 1  # (the other one; this one has Sign out)
    confirm = await client.get(f"{PREFIX}/_/sessions/{ids[0]}/end")
    assert confirm.status_code == 200 and "signed out on its next request" in confirm.text
    r = await client.post(f"{PREFIX}/_/sessions/{ids[0]}/end", data={"csrf": CSRF.search(confirm.text).group(1)},
                          follow_redirects=False)
    assert r.status_code == 303
    assert dict(world.reg.ledger.commit(world.reg.ledger.head()).trailers)["Action"] == "end-session"
    assert (await client.get(f"{PREFIX}/_/tokens")).status_code == 200
    here = client.cookies["registry_session"]
    client.cookies.set("registry_session", phone, path="/-")
    assert (await client.get(f"{PREFIX}/_/tokens")).status_code == 401
    # signing out everywhere else, from a third browser, ends the link's session and keeps its own
    await sign_in_with(client, world, world.tokens[OWNER])
    page = await client.get(f"{PREFIX}/_/tokens")
    r = await client.post(f"{PREFIX}/_/sessions/end-others", data={"csrf": CSRF.search(page.text).group(1)},
                          follow_redirects=False)
    assert r.status_code == 303 and (await client.get(f"{PREFIX}/_/tokens")).status_code == 200
    client.cookies.set("registry_session", here, path="/-")
    assert (await client.get(f"{PREFIX}/_/tokens")).status_code == 401


def test_a_person_has_at_most_so_many_sessions(world, monkeypatch):
    """Signing in past the limit ends the oldest: a person's sessions directory stays small."""
    from registry.operations import signin

    monkeypatch.setattr(signin, "MAX_SESSIONS", 3)
    who = identity.check_token(world.reg.snapshot(), OWNER, world.tokens[OWNER])
    made = [operations.start_session(world.reg, who).session for _ in range(5)]
    kept = records.sessions_of(world.reg.snapshot(), OWNER)
    assert [s.id for s in kept] == [s.id for s in made[-3:]]


def test_the_operator_lists_and_ends_a_persons_sessions(world, capsys):
    from registry import cli, maintenance

    who = identity.check_token(world.reg.snapshot(), OWNER, world.tokens[OWNER])
    first, second = (operations.start_session(world.reg, who).session for _ in range(2))
    data = ["--data", world.reg.settings.data]
    assert cli.main([*data, "session", "list", OWNER]) == 0
    listed = capsys.readouterr().out
    assert first.id in listed and second.id in listed and f"token {who.token_id}" in listed
    assert maintenance.verify(world.reg, hash_blobs=False).ok  # (a session is a known kind of record)
    assert cli.main([*data, "session", "end", OWNER, first.id]) == 0
    assert [s.id for s in records.sessions_of(world.reg.snapshot(), OWNER)] == [second.id]
    assert cli.main([*data, "session", "end", OWNER, first.id]) == 1  # (ended already: says so)
    assert "has ended already" in capsys.readouterr().err
    assert cli.main([*data, "session", "end", OWNER, "--all"]) == 0
    assert records.sessions_of(world.reg.snapshot(), OWNER) == []
    assert cli.main([*data, "session", "end", OWNER, "../../users"]) == 1


@pytest.mark.parametrize("catches_up", [True, False])
async def test_a_replica_behind_a_sign_in_waits_for_it_and_never_calls_the_session_over(world, tmp_path, catches_up):
    """Signed in through the primary (or another replica) a moment ago, a browser's next request
    reaches a replica that hasn't fetched the sign-in yet: it waits for that commit, as for a write
    forwarded through it. If the commit doesn't come, the request is answered signed out but the
    cookie is kept (only a session the replica knows has ended is cleared)."""
    import shutil

    import anyio
    import pygit2
    from litestar.testing import AsyncTestClient

    from registry.config import Settings
    from registry.datadir import Registry
    from registry.ledger import REF
    from registry.web.app import create_asgi
    from registry.web.ui import session as sessions

    keys = sessions.Keys.of_primary(world.reg.settings)
    copy = tmp_path / "replica"
    replica_settings = Settings(data=str(copy), follow="http://primary.test")
    shutil.copytree(world.reg.settings.ledger_path, copy / "ledger.git")  # (the replica, before the sign-in)
    replica_settings.replica_of_path.write_text("http://primary.test")
    replica_settings.session_public_key_path.write_bytes(keys.public)
    started = operations.start_session(world.reg,
                                       identity.check_token(world.reg.snapshot(), OWNER, world.tokens[OWNER]))
    cookie = sessions.Session(OWNER, started.session.id, "csrf-id", 2e9, started.commit).cookie(keys)
    settings = Settings(data=str(copy), follow="http://primary.test")
    replica = Registry.open(settings)
    waited: list[str] = []
    FETCHED = "refs/witness/served"

    class Follower:  # fetches from the primary's ledger when asked, as the real one does over HTTP
        primary = "http://primary.test"

        def stopped(self):
            return None

        def lead(self):
            return False

        def health(self):
            return {}

        async def follow(self):
            await anyio.sleep_forever()

        async def wait_for(self, commit: str) -> bool:
            waited.append(commit)
            if catches_up:  # (fetched beside main, then main moved to it: as replica/follow.py does)
                repo = pygit2.Repository(str(copy / "ledger.git"))
                repo.remotes.create_anonymous(str(world.reg.settings.ledger_path)).fetch([f"+{REF}:{FETCHED}"])
                replica.ledger.move_to(str(repo.references[FETCHED].target))
            return catches_up

    app = create_asgi(settings, replica)
    app.app.state.web.replica = Follower()
    async with AsyncTestClient(app=app) as c:
        r = await c.get(f"{PREFIX}/_/tokens", headers={"cookie": f"registry_session={cookie}"})
    assert waited == [started.commit]
    if catches_up:
        assert r.status_code == 200 and ">this session<" in r.text
    else:
        assert r.status_code == 401 and "registry_session" not in r.headers.get("set-cookie", "")


# --- live servers: two workers, and a replica -----------------------------------------------------


def _sign_in(base: str, email: str, token: str) -> tuple[httpx.Client, str]:
    browser = httpx.Client(base_url=base, timeout=30)
    csrf = CSRF.search(browser.get("/-/_/signin").text).group(1)
    r = browser.post("/-/_/signin", data={"csrf": csrf, "email": email, "token": token, "next": ""})
    assert r.status_code == 303, r.text
    return browser, browser.cookies["registry_session"]


def _sign_out(browser: httpx.Client) -> None:
    csrf = CSRF.search(browser.get("/-/_/tokens").text).group(1)
    r = browser.post("/-/_/signout", data={"csrf": csrf})
    assert r.status_code == 303, r.text


def _replayed(base: str, cookie: str, times: int = 12) -> list[int]:
    """The cookie sent again, each time on a new connection (so to whichever worker takes it)."""
    statuses = []
    for _ in range(times):
        r = httpx.get(f"{base}/-/_/tokens", cookies={"registry_session": cookie}, timeout=30)
        if r.status_code == 401:
            assert "Sign in" in r.text and 'registry_session=""' in r.headers.get("set-cookie", "")
        statuses.append(r.status_code)
    return statuses


@pytest.fixture
def live(tmp_path):
    server = start_server(tmp_path / "data", workers=2)
    server.cli("user", "create", "dev@example.com")
    yield server
    server.stop()


@pytest.mark.e2e
@pytest.mark.parametrize("scope", ["read", "write"])
def test_a_signed_out_cookie_is_refused_by_every_worker(live, scope):
    token = live.cli("token", "create", "dev@example.com", "--scope", scope).stdout.strip()
    browser, cookie = _sign_in(live.url, "dev@example.com", token)
    assert set(_replayed(live.url, cookie)) == {200}  # (and now each worker has it cached)
    _sign_out(browser)
    assert set(_replayed(live.url, cookie)) == {401}
    browser.close()


@pytest.mark.e2e
def test_a_signed_out_cookie_is_refused_by_a_replica_once_it_has_the_commit(tmp_path):
    from tests.e2e.replica.test_replica import Cluster

    cluster = Cluster(tmp_path)
    try:
        replica = cluster.replica("replica", workers=2)
        cluster.primary.cli("user", "create", "dev@example.com")
        token = cluster.primary.cli("token", "create", "dev@example.com").stdout.strip()
        # signed in and out through the replica (both forwarded to the primary)
        browser, cookie = _sign_in(replica.url, "dev@example.com", token)
        assert set(_replayed(replica.url, cookie)) == {200}
        _sign_out(browser)
        assert set(_replayed(replica.url, cookie)) == {401}  # (the answer waited for the commit)
        assert set(_replayed(cluster.primary.url, cookie, 2)) == {401}
        # signed in and out on the primary: the replica refuses the cookie once it has caught up
        browser, cookie = _sign_in(cluster.primary.url, "dev@example.com", token)
        cluster.caught_up(replica)
        assert set(_replayed(replica.url, cookie)) == {200}
        _sign_out(browser)
        cluster.caught_up(replica)
        assert set(_replayed(replica.url, cookie)) == {401}
        # revoking the token the session came from ends it there too
        browser, cookie = _sign_in(replica.url, "dev@example.com", token)
        token_id = cluster.primary.cli("token", "list", "dev@example.com").stdout.split()[5]
        cluster.primary.cli("token", "revoke", "dev@example.com", token_id)
        cluster.caught_up(replica)
        assert set(_replayed(replica.url, cookie)) == {401}
    finally:
        cluster.stop()


async def test_signing_in_in_a_loop_is_paced(client, world):
    """Each sign-in is a commit, and even a read-scoped token may make one: a loop of them would grow
    the ledger at the speed of the loop. Past SIGN_INS_PER_MINUTE a person is told to wait, and
    nothing is committed."""
    from registry.operations.signin import SIGN_INS_PER_MINUTE

    secret = world.tokens["dev-readonly"]
    for _ in range(SIGN_INS_PER_MINUTE):
        client.cookies.clear()
        page = await client.get(f"{PREFIX}/_/signin")
        r = await client.post(f"{PREFIX}/_/signin", data={"csrf": CSRF.search(page.text).group(1),
                                                          "email": "dev@acme.test",
                                                          "token": secret}, follow_redirects=False)
        assert r.status_code == 303, r.text
    head = world.reg.ledger.head()
    client.cookies.clear()
    page = await client.get(f"{PREFIX}/_/signin")
    r = await client.post(f"{PREFIX}/_/signin", data={"csrf": CSRF.search(page.text).group(1), "email": "dev@acme.test",
                                                      "token": secret}, follow_redirects=False)
    assert r.status_code == 429 and "times in the last minute: wait" in r.text, r.text
    assert world.reg.ledger.head() == head
