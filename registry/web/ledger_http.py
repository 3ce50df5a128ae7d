"""The ledger over HTTP, for auditors and witnesses: its signed checkpoint, its keys, and the whole
ledger over git's smart HTTP protocol (read-only), served by `git http-backend` as a CGI program.

The checkpoint and the keys are public (they name no workspace, package or person); the ledger
itself names everything, so only the operator and witness tokens may fetch it.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import subprocess
import threading
import time
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import anyio
from litestar import HttpMethod, Request, Response, get, route
from litestar.params import FromPath
from litestar.response import Stream

from ..errors import Forbidden, Invalid, NotFound, RegistryError, Unauthorized
from ..ledger import Ledger
from ..trust.keys import allowed_signers, checkpoint_verifiers
from .state import reader, web_state

log = logging.getLogger("registry.web")
TEXT = "text/plain"  # (Litestar adds the charset to text/ types)
CHUNK = 64 * 1024
MAX_REQUEST = 64 * 2**20  # an upload-pack request: wants and haves, however long a fetch negotiates
LONG_POLL = 25.0  # seconds `?wait=<head>` holds a checkpoint request while the head stays there
POLL_EVERY = 0.02  # seconds between looks at the head meanwhile (a stat each, per worker: see HeadWatch)


class HeadWatch:
    """The `?wait=` long polls of one worker, and the one task that looks at the head for them all
    (app.py's lifespan makes it, as `app.state.head_watch`, and runs `watch`): a stat every
    POLL_EVERY seconds while anyone waits (the ref file is replaced on every move, whoever moves
    it: a writer in any process, a replica's fetch), and one event per head that wakes every waiter
    at once. Idle waiters cost nothing but their connections."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.running = False
        self._moved = anyio.Event()  # set when the head moves, then replaced for the next head
        self._wanted = anyio.Event()  # set when the first waiter comes: the watch sleeps till then
        self._waiting = 0
        self._stopped = False

    def stop(self) -> None:
        """The worker is stopping: every waiter is answered now, and later ones at once (a replica's
        long poll would hold the worker's exit for up to LONG_POLL seconds)."""
        self._stopped = True
        self._moved.set()

    async def watch(self) -> None:
        """Run for the worker's life."""
        self.running = True
        try:
            while True:
                if not self._waiting:
                    self._wanted = anyio.Event()
                    await self._wanted.wait()
                try:
                    head = self.ledger.head()
                    while self._waiting and self.ledger.head() == head:
                        await anyio.sleep(POLL_EVERY)
                except Exception:  # (a ref read mid-replace, say: never take the worker's lifespan down)
                    log.exception("watching the ledger's head failed; waking the waiters to look for themselves")
                    await anyio.sleep(POLL_EVERY)
                self._moved.set()
                self._moved = anyio.Event()
        finally:
            self.running = False
            self._moved.set()  # (nobody waits on a watch that has stopped)

    async def moved_from(self, head: str, timeout: float) -> None:
        """Once the head is no longer ``head``, or after ``timeout`` seconds."""
        self._waiting += 1
        self._wanted.set()
        try:
            with anyio.move_on_after(timeout):
                while True:
                    moved = self._moved  # (taken before the look: a move after it sets this one)
                    if self.ledger.head() != head or self._stopped:
                        return
                    if self.running:
                        await moved.wait()
                    else:  # (an app served without its lifespan, as some tests do: each waiter looks)
                        await anyio.sleep(POLL_EVERY)
        finally:
            self._waiting -= 1


def _text(body: str, cache: str = "no-store") -> Response:
    return Response(body.encode(), media_type=TEXT, headers={"cache-control": cache})


@get("/_/ledger/checkpoint", include_in_schema=False)
async def ledger_checkpoint(request: Request) -> Response:
    """The head of main as a signed note: cheap to poll (signed at most once a second per head).
    With `?wait=<head>`, answered once the head is another (or after LONG_POLL seconds): a
    replica or a witness is woken by the next commit instead of polling for it."""
    state = web_state(request)
    wait = request.query_params.get("wait")
    if wait:
        watch = getattr(request.app.state, "head_watch", None) or HeadWatch(state.registry.ledger)
        await watch.moved_from(wait, LONG_POLL)
    if state.replica is not None:  # (a replica has no keys: it serves the primary's, for what it holds)
        note = state.replica.checkpoint_note()
        if note is None:
            raise NotFound("This replica has not fetched a checkpoint from its primary yet.")
        return _text(note)
    r = await reader(request)
    key = (r.commit, int(time.time()))
    if state.checkpoint is None or state.checkpoint[0] != key:
        state.checkpoint = (key, r.checkpoint())
    return _text(state.checkpoint[1])


@get("/_/ledger/allowed-signers", include_in_schema=False)
async def ledger_allowed_signers(request: Request) -> Response:
    """Every commit key with its validity, as `git -c gpg.ssh.allowedSignersFile=...` reads it."""
    record = (await reader(request)).signing_keys()
    if record is None:
        raise NotFound("This ledger has no signing keys yet.")
    return _text(allowed_signers(record), "public, max-age=60")


@get("/_/ledger/checkpoint-key", include_in_schema=False)
async def ledger_checkpoint_key(request: Request) -> Response:
    """The note verifier key of the current checkpoint key (what `registry witness --key` takes)."""
    record = (await reader(request)).signing_keys()
    if record is None:
        raise NotFound("This ledger has no signing keys yet.")
    return _text(checkpoint_verifiers(record, current_only=True)[0].text + "\n", "public, max-age=60")


@route("/_/ledger.git/{rest:path}", http_method=[HttpMethod.GET, HttpMethod.HEAD, HttpMethod.POST],
       include_in_schema=False, request_max_body_size=MAX_REQUEST)
async def ledger_git(request: Request, rest: FromPath[str]) -> Response:
    """git's smart HTTP, fetch only: `info/refs?service=git-upload-pack` and `git-upload-pack`."""
    rest = rest.lstrip("/")
    passed = _passed_once(request)
    service = passed["service"]
    if "receive-pack" in rest or service == "git-receive-pack":
        raise Forbidden("The ledger is read-only over HTTP: only the registry itself commits to it.")
    smart = (request.method in ("GET", "HEAD") and rest == "info/refs" and service == "git-upload-pack") or \
        (request.method == "POST" and rest == "git-upload-pack")
    if not smart:
        raise NotFound("Only git's smart HTTP protocol is served here: `git clone URL/_/ledger.git` "
                       "(git 1.6.6 or later).")
    try:
        r = await reader(request)
    except (Forbidden, Unauthorized) as exc:  # (a wrong token: the hint names the token that fetches the ledger)
        raise type(exc)(exc.message.replace("`registry token create EMAIL`", "`registry token create EMAIL --witness`, "
                                            "by the operator")) from None
    path = r.ledger_path()  # (the operator or a witness token; anyone else is refused)
    git = shutil.which("git")
    if git is None:
        raise RegistryError("git is not installed on the server: the ledger can't be served.", status=503)
    body = await request.body() if request.method == "POST" else b""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GIT_PROJECT_ROOT": str(path.parent), "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": f"/{path.name}/{rest}",
        "REQUEST_METHOD": request.method, "QUERY_STRING": urlencode({"service": service}) if service else "",
        "CONTENT_TYPE": passed["content-type"], "CONTENT_LENGTH": str(len(body)),
        "REMOTE_USER": r.who.email or r.who.kind, "REMOTE_ADDR": (request.client.host if request.client else ""),
        "GIT_PROTOCOL": passed["git-protocol"], "HTTP_CONTENT_ENCODING": passed["content-encoding"],
        # nothing of the machine's git configuration applies; pushing is off whatever it says
        "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "HOME": str(path),
        "GIT_CONFIG_COUNT": "2", "GIT_CONFIG_KEY_0": "http.receivepack", "GIT_CONFIG_VALUE_0": "false",
        "GIT_CONFIG_KEY_1": "safe.directory", "GIT_CONFIG_VALUE_1": str(path),
    }
    proc = subprocess.Popen([git, "http-backend"], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    threading.Thread(target=_feed, args=(proc, body), name="ledger-http-feed", daemon=True).start()
    try:
        status, headers, first = await anyio.to_thread.run_sync(_cgi_headers, proc)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    headers["cache-control"] = "no-store"
    return Stream(_rest(proc, first), status_code=status, headers=headers)


def _passed_once(request: Request) -> dict[str, str]:
    """What git http-backend is told of the request: the `service` query parameter and the headers
    it reads, each as this handler checks it. Each must be given at most once, since two readers
    of a repeated one disagree (git takes the last `service`, a parser here the first): refused,
    rather than guessed. git is then given these values alone (the query string rebuilt from the
    one `service` checked), never the request's own text to parse again."""
    given = {"service": request.query_params.getall("service", [])}
    given |= {name: request.headers.getall(name, []) for name in _HEADERS_PASSED}
    repeated = [f"the query parameter {name!r}" if name == "service" else f"the header {name!r}"
                for name, values in given.items() if len(values) > 1]
    if repeated:
        raise Invalid(f"Given more than once: {' and '.join(repeated)}. Give each once (of repeated values, git "
                      "reads the last and this server the first, so neither is guessed).")
    return {name: values[0] if values else "" for name, values in given.items()}


_HEADERS_PASSED = ("content-type", "content-encoding", "git-protocol")


def _feed(proc: subprocess.Popen[bytes], body: bytes) -> None:
    """The request to git's stdin, then git's complaints (if any) to the log."""
    assert proc.stdin is not None and proc.stderr is not None  # (both are pipes)
    try:
        proc.stdin.write(body)
        proc.stdin.close()
    except (BrokenPipeError, OSError):
        pass
    errors = proc.stderr.read().decode(errors="replace").strip()
    if errors:
        log.warning("git http-backend: %s", errors)


def _stdout(proc: subprocess.Popen[bytes]) -> io.BufferedReader:
    """git's stdout: a pipe with the default buffering, whose ``read1`` answers with what has come."""
    assert isinstance(proc.stdout, io.BufferedReader)
    return proc.stdout


def _cgi_headers(proc: subprocess.Popen[bytes]) -> tuple[int, dict[str, str], bytes]:
    """The CGI response's status and headers, and whatever of the body came with them."""
    data = b""
    stdout = _stdout(proc)
    while (end := _header_end(data)) is None:
        chunk = stdout.read1(CHUNK)
        if not chunk:
            raise RegistryError("git http-backend ended without answering; the server log says why.", status=502)
        data += chunk
    head, first = data[:end[0]], data[end[1]:]
    status, headers = 200, {}
    for line in head.decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() == "status":
            status = int(value.split()[0])
        elif name.strip():
            headers[name.strip().lower()] = value.strip()
    return status, headers, first


def _header_end(data: bytes) -> tuple[int, int] | None:
    """Where the CGI headers end, and where the body starts (git writes CRLF; a bare LF is allowed)."""
    found = [(i, i + len(sep)) for sep in (b"\r\n\r\n", b"\n\n") if (i := data.find(sep)) >= 0]
    return min(found) if found else None


async def _rest(proc: subprocess.Popen[bytes], first: bytes) -> AsyncIterator[bytes]:
    stdout = _stdout(proc)
    try:
        if first:
            yield first
        while chunk := await anyio.to_thread.run_sync(stdout.read1, CHUNK):
            yield chunk
    finally:
        if proc.poll() is None:
            proc.kill()
        await anyio.to_thread.run_sync(proc.wait)
