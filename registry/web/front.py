"""The front door: ASGI in front of the Litestar app, for the two requests that matter most.

Repeat GETs of index pages are answered from `simple.Answers` (no routing, no authentication, no
ledger lookup), and uploads go straight to `upload.upload`: neither needs anything of routing, and
on a 400-file `twine upload` the framework's share of each request is worth saving. Everything else
is the app's. On a read replica, every write goes to the primary instead (forward.py); a primary's
answers to writes name the commit they made, for the replica to wait for.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote

from litestar import Litestar

from .. import metrics
from ..datadir import COMMITS
from ..errors import NotFound, RegistryError
from ..names import RESERVED_WORKSPACES
from . import eventlog, repeats, upload
from .answers import Reply, moved, realm, refusal
from .asgi import ASGIApp, Message, Receive, Scope, Send
from .caches import Answer, Page, matches
from .guards import guarded, paced
from .incoming import Incoming, incoming, named, refuse_cross_site
from .state import WebState
from .stopping import StoppingNow
from .ui.once import NEW_TOKEN_COOKIE

if TYPE_CHECKING:
    from .forward import Forwarder

log = logging.getLogger("registry.web")


class ClientGone(Exception):
    """The client hung up before its request body ended."""


class FrontDoor:
    def __init__(self, app: Litestar) -> None:
        # (Litestar's __call__ names its own TypedDicts for the scope and the messages: the same dicts)
        self.app = cast("ASGIApp", app)
        self._litestar = app
        self._state: WebState = app.state.web
        self._forward: Forwarder | None = None
        if self._state.replica is not None:
            from .forward import Forwarder

            self._forward = self._state.forwarder = Forwarder(self._state.replica)

    def __getattr__(self, name: str) -> Any:  # look like the app to whoever holds us (test clients, granian)
        return getattr(self._litestar, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        self._state.stopping.begin()  # (a stopping worker waits for these: stopping.py)
        try:
            await self._serve(scope, receive, send)
        finally:
            self._state.stopping.end()

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            seen = incoming(scope)  # (read once: every part of the registry reads the request from here)
        except RegistryError as exc:
            return await refusal(exc, path=scope.get("path") or "").send(send)
        method = scope["method"]
        if method in ("GET", "HEAD"):
            lowered = _lowercase_workspace(scope["path"])
            if lowered is not None:  # (slugs are lowercase: /Default/pkg/ is /default/pkg/, one way everywhere)
                return await moved(lowered, scope.get("query_string", b"").decode("latin-1")).send(send)
        if method == "GET":
            page = _browser_page(scope, seen)
            if page is not None:  # a person, not an installer: the web UI shows the same thing
                return await Reply(302, (("location", page), ("vary", "Accept"), ("cache-control", "no-store"),
                                         ("content-type", "text/plain; charset=utf-8")),
                                   f"The web UI: {page}\n".encode()).send(send)
        if method == "GET" and self._forward is not None and _carries_new_token(scope):
            # (a token just made through this replica: its secret is sealed for the primary, which shows it)
            return await self._forward(scope, receive, guarded(send))
        if method in ("GET", "HEAD"):
            found = self._state.answers.lookup(scope, self._state.registry.ledger.head())
            if found is not None:
                named(scope, repeats.ROUTE)
                remembered, body = found  # (the same bytes again: answered before the door)
                cast("dict", scope)[repeats.ANSWERED] = (remembered.commit, remembered.expires, body)
                return await _send_answer(scope, send, *found)
        send = guarded(send)
        if method not in ("GET", "HEAD"):
            try:
                refuse_cross_site(seen, method)
            except RegistryError as exc:
                return await refusal(exc, path=scope["path"]).send(send)
            settings = self._state.registry.settings
            receive = self._state.stopping.body(paced(receive, settings.min_body_rate, settings.body_grace_seconds))
            if self._forward is not None and not scope["path"].startswith("/_/ledger.git/"):
                return await self._forward(scope, receive, send)  # (a fetch of the ledger is served here)
            made: list[str] = []
            token = COMMITS.set(made)
            try:
                return await self._write(scope, receive, _naming_commits(send, made, self._state))
            finally:
                COMMITS.reset(token)
        target = _without_simple(scope["path"])
        if target is not None:
            return await moved(target, scope.get("query_string", b"").decode("latin-1")).send(send)
        if method == "HEAD":
            return await self._head(scope, receive, send)
        await self.app(scope, receive, send)

    async def _head(self, scope: Scope, receive: Receive, send: Send) -> None:
        """HEAD wherever GET is answered (load balancers probe with it): the routes that take HEAD
        themselves (index pages, files) answer it; for the rest, refused with 405, it is a GET whose
        body is dropped, its headers (Content-Length included) unchanged."""
        refused = False
        fresh = {**scope, "state": dict(scope.get("state") or {})}  # (the app writes to the scope it is given)

        async def first(message: Message) -> None:
            nonlocal refused
            if message["type"] == "http.response.start" and message["status"] == 405:
                refused = True
            if not refused:
                await send(message)

        await self.app(scope, receive, first)
        if not refused:
            return
        ended = False

        async def bodiless(message: Message) -> None:
            nonlocal ended
            if message["type"] == "http.response.body":
                if ended:
                    return
                ended, message = True, {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**fresh, "method": "GET"}, receive, bodiless)

    async def _write(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "POST":
            target = _upload_target(scope["path"])
            if target is not None:
                return await self._upload(scope, receive, send, *target)
            if scope["path"] in ("/", "/legacy", "/legacy/"):  # (the public index's upload URL, here per workspace)
                return await refusal(RegistryError(
                    "Uploads go to a workspace's URL, /<workspace>/ (e.g. /default/): its index URL is also its "
                    "upload URL.", status=405), path=scope["path"], extra=(("allow", "GET, HEAD"),)).send(send)
        await self.app(scope, receive, send)

    async def _upload(self, scope: Scope, receive: Receive, send: Send, ws: str, wrong: str | None) -> None:
        named(scope, "/{ws}/ (upload)")
        seen = incoming(scope)
        headers = {k: value for k in ("authorization", "content-type", "content-length")
                   if (value := seen.header(k.encode())) is not None}
        try:
            if wrong is not None:
                raise NotFound(f"Uploads go to /{ws}/ (or /{ws}/legacy/), not {scope['path']}.")
            text = await upload.upload(self._state, ws, headers, _body(receive))
            await Reply(200, (("content-type", "text/plain; charset=utf-8"), ("cache-control", "no-store")),
                        text.encode()).send(send)
        except ClientGone:
            return
        except RegistryError as exc:
            metrics.refused(exc, exc.status)
            eventlog.refused(exc, exc.status, ws)
            if exc.status >= 500 and not isinstance(exc, StoppingNow):
                log.error("POST %s: %s", scope["path"], exc.message)
            await refusal(exc, realm(ws), path=scope["path"]).send(send)
        except Exception as exc:
            metrics.refused(exc, 500)
            eventlog.refused(exc, 500, ws)
            log.exception("upload to %s failed", scope["path"])
            await refusal(RegistryError("Internal server error while publishing; the server log says why.",
                                        status=500), path=scope["path"]).send(send)


def _naming_commits(send: Send, made: list[str], state: WebState) -> Send:
    """``send``, with the answer's headers naming the last commit the request made (or, if it made
    none, the head it saw): what a replica that forwarded it waits for."""
    async def naming(message: Message) -> None:
        if message["type"] == "http.response.start":
            name = (b"x-registry-commit", made[-1].encode()) if made else \
                (b"x-registry-head", state.registry.ledger.head().encode())
            message = {**message, "headers": [*message.get("headers", ()), name]}
        await send(message)
    return naming


def _browser_page(scope: Scope, seen: Incoming) -> str | None:
    """Where the UI shows an index page, for a browser's navigation (its Accept names both text/html
    and application/xhtml+xml, which no installer sends; pip, uv and poetry name the PEP 691 types)."""
    accept = (seen.accept or "").lower()
    if "application/xhtml+xml" not in accept or "text/html" not in accept or "vnd.pypi" in accept:
        return None
    if seen.formats:
        return None
    parts = scope["path"].split("/")[1:]
    if parts[-1:] == [""]:
        parts = parts[:-1]
    if not parts:
        return "/-/"
    if len(parts) == 4 and seen.authorization is None and _a_file(parts):
        # (a file's URL opened in a signed-in browser: its session cookie is the UI's, scoped to /-/ on
        # purpose, so the UI's download, which reads with the session and changes nothing, serves it)
        ws, project, version, filename = (quote(p, safe="") for p in parts)
        return f"/-/{ws}/packages/{project}/{version}/files/{filename}"
    if parts[0] in RESERVED_WORKSPACES or len(parts) > 2 or not all(parts) or parts[-1].startswith("@"):
        return None  # (`/<ws>/@<ref>/`, the index as it stood, has no page of the UI: it is shown as it is)
    return "/-/" + quote(parts[0], safe="") + "/" + (f"packages/{quote(parts[1], safe='')}/" if len(parts) == 2 else "")


_NEW_TOKEN = NEW_TOKEN_COOKIE.encode() + b"="


def _carries_new_token(scope: Scope) -> bool:
    """Whether the request brings a new token's sealed secret (ui/once.py), which only the primary opens."""
    return any(name == b"cookie" and _NEW_TOKEN in value for name, value in scope["headers"])


def _a_file(parts: list[str]) -> bool:
    """Whether `/<ws>/<project>/<version>/<file>` names a distribution file of today's index (not its
    `.metadata`, nor the index as it stood at a commit, nor a reserved first segment)."""
    ws, project, version, filename = parts
    return (all(parts) and ws not in RESERVED_WORKSPACES and not project.startswith("@") and not version.startswith("@")
            and not filename.endswith(".metadata") and filename.endswith((".whl", ".tar.gz", ".zip")))


def _without_simple(path: str) -> str | None:
    """`/<ws>/simple/...` (and `/simple/...`), the habit other indexes teach, without the `simple`
    segment; None for any other path. (No package may be called `simple` for this reason.)"""
    parts = path.split("/")
    if len(parts) >= 3 and parts[1] == "simple":
        return "/" + "/".join(parts[2:])
    if len(parts) >= 3 and parts[2] == "simple" and parts[1] and parts[1] not in RESERVED_WORKSPACES:
        return "/".join(parts[:2] + parts[3:]) or "/"
    return None


def _lowercase_workspace(path: str) -> str | None:
    """The path with its workspace segment in lowercase, if it has capitals (workspace slugs are
    lowercase, as Bitbucket's are); None otherwise, and for the reserved first segments. `/<Name>/`
    alone is left to the app: it may be a project looked up across workspaces (its canonical name
    is a redirect there, and a workspace's lowercase slug is such a name)."""
    parts = path.split("/")
    if len(parts) < 3 or not any(parts[2:]) or parts[1] == parts[1].lower() or parts[1].lower() in RESERVED_WORKSPACES:
        return None
    return "/".join(["", parts[1].lower(), *parts[2:]])


def _upload_target(path: str) -> tuple[str, str | None] | None:
    """(workspace, None) for `/<ws>/` or `/<ws>/legacy/` (slashes optional: uploads are never
    redirected); (workspace, segment) for another second segment, a wrong upload URL refused with
    a hint; None for anything else, and for the reserved first segments: those are the app's."""
    parts = path.strip("/").split("/")
    ws = parts[0].lower()  # (an upload isn't redirected: /Default/ is taken as /default/, as a GET is sent there)
    if not ws or ws in RESERVED_WORKSPACES or len(parts) > 2:
        return None
    if len(parts) == 2 and parts[1] != "legacy":
        return ws, parts[1]
    return ws, None


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return



async def _send_answer(scope: Scope, send: Send, answer: Answer, page: Page) -> None:
    inm = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"if-none-match"), None)
    if matches(page.etag, inm):
        await send({"type": "http.response.start", "status": 304, "headers": answer.headers})
        await send({"type": "http.response.body", "body": b""})
        return
    body = page.body
    headers = [*answer.headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
