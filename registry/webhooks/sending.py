"""One delivery: the request a hook sends for an event (its body, signed headers), and its sending.

Every request carries `Webhook-Id` (the commit id: the same on every retry and replay, so a receiver
can drop what it has seen), `Webhook-Timestamp` (Unix seconds, when it was signed) and, but for a
Bitbucket hook, `Webhook-Signature` over ``registry-webhook-v1.<id>.<timestamp>.<body>``:
`ed25519=<base64>` by the ledger's current commit key (`Webhook-Key` names its fingerprint; the
public key is in `/_/ledger/allowed-signers`), or `sha256=<hex>`, HMAC-SHA256 with the hook's
secret. The prefix keeps a webhook signature from ever standing for a commit's or a checkpoint's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import socket
import ssl
import time
from dataclasses import dataclass

import httpcore
import httpx
import msgspec

from .. import __version__, layout, outbound
from ..config import Settings
from ..datadir import Registry
from ..model import SigningKeys, Webhook
from ..trust.keys import current
from .addresses import ALLOW, PinnedBackend, PrivateAddress, Unresolved
from .events import Event
from .secrets import Stored

TIMEOUT = 10.0
DOMAIN = b"registry-webhook-v1."
BITBUCKET_API = "https://api.bitbucket.org/2.0/repositories/{workspace}/{repository}/pipelines/"


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: no answer
    error: str  # "" when delivered

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def signed_content(event_id: str, timestamp: str, body: bytes) -> bytes:
    return DOMAIN + f"{event_id}.{timestamp}.".encode() + body


def body(hook: Webhook, event: Event) -> bytes:
    if hook.format == "bitbucket-pipeline" and hook.bitbucket is not None:
        variables = {"REGISTRY_EVENT_ID": event.id, "REGISTRY_WORKSPACE": event.workspace,
                     "REGISTRY_PACKAGE": event.package or "", "REGISTRY_VERSION": event.version or "",
                     "REGISTRY_FILE": event.file or ""}
        return msgspec.json.encode({
            "target": {"type": "pipeline_ref_target", "ref_type": "branch", "ref_name": hook.bitbucket.branch,
                       "selector": {"type": "custom", "pattern": hook.bitbucket.pipeline}},
            "variables": [{"key": k, "value": v} for k, v in variables.items() if v]})
    return msgspec.json.encode({"hook": hook.name, "event": event})


def headers(reg: Registry, hook: Webhook, secret: str | None, event: Event, content: bytes) -> dict[str, str]:
    stamp = str(int(time.time()))
    out = {"Content-Type": "application/json", "User-Agent": f"pypi-registry-webhooks/{__version__}",
           "Webhook-Id": event.id, "Webhook-Timestamp": stamp, "Webhook-Event": event.type}
    if hook.format == "bitbucket-pipeline":
        if secret:
            out["Authorization"] = f"Bearer {secret}"
        return out
    message = signed_content(event.id, stamp, content)
    if hook.signing == "hmac-sha256":
        key = secret or ""  # (never empty: `send` checked)
        out["Webhook-Signature"] = "sha256=" + hmac.new(key.encode(), message, hashlib.sha256).hexdigest()
    else:
        keys = reg.snapshot().get(layout.SIGNING_KEYS, SigningKeys)
        if keys is not None:
            signing = current(keys, "commit")
            private, _ = reg.keys.private("commit", signing.public_key)
            out["Webhook-Signature"] = "ed25519=" + base64.b64encode(private.sign(message)).decode()
            out["Webhook-Key"] = signing.fingerprint
    return out


MISSING_SECRET = "its secret is missing from the data directory: add the hook again with a secret"
MISSING_URL = "its URL is missing from the data directory: add the hook again (with its URL and any secret)"


def needs_secret(hook: Webhook) -> bool:
    """An HMAC key signs; a Bitbucket hook's token is its API call's only credential."""
    return hook.format == "bitbucket-pipeline" or hook.signing == "hmac-sha256"


def client(settings: Settings) -> httpx.Client:
    """A deliverer's client: no redirects (a receiver can't send it elsewhere) and, unless the operator
    allows private addresses, one that connects only to a host's checked public addresses (addresses.py),
    directly: given a transport, httpx uses no proxy from the environment, which would resolve the name itself."""
    if settings.webhooks_private:
        return httpx.Client(follow_redirects=False)
    transport = httpx.HTTPTransport()
    # (httpx's own pool, as HTTPTransport() makes it, but for its sockets: httpx takes no network backend)
    transport._pool = httpcore.ConnectionPool(ssl_context=httpx.create_ssl_context(), max_connections=100,
                                              max_keepalive_connections=20, keepalive_expiry=5.0,
                                              network_backend=PinnedBackend())
    return httpx.Client(transport=transport, follow_redirects=False)


PRIVATE = f"private address: the hook's host resolves to a private address; {ALLOW}"


def failure(exc: BaseException) -> str:
    """What an attempt says of a request that got no answer: a coarse class only ("refused", "timeout",
    "tls", "dns", "private address", "other"), never the error's text: a hook's attempts are shown to
    workspace admins, and the details of a connection's failure would tell them about the network."""
    if isinstance(exc, PrivateAddress):
        return PRIVATE
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    causes: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and len(causes) < 8:
        causes.append(cause)
        cause = cause.__cause__ or cause.__context__
    if any(isinstance(c, Unresolved | socket.gaierror) for c in causes):
        return "dns"
    if any(isinstance(c, ssl.SSLError | ssl.CertificateError) for c in causes):
        return "tls"
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return "refused"
    return "other"


# What a kept-alive connection the receiver closed meanwhile looks like when it is used again.
_STALE = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


def missing(hook: Webhook, kept: Stored | None) -> str:
    """Why ``hook`` can't deliver with what the data directory keeps of it (``kept``), or ""."""
    if kept is None or not kept.url:
        return MISSING_URL
    return MISSING_SECRET if needs_secret(hook) and not kept.secret else ""


def send(client: httpx.Client, reg: Registry, hook: Webhook, kept: Stored | None, event: Event) -> Answer:
    """POST the event to the URL ``kept`` in the data directory for this version of ``hook``, on the
    client's kept-alive connection to the receiver (a new one if it has none). A connection the
    receiver closed as it was used is tried once more on a new one at once: a receiver may have got
    it already, as it may on any retry (`Webhook-Id` says it is the same)."""
    if why := missing(hook, kept):
        # (secrets are not in backups: a restored data directory may lack one; signing with an empty
        # key or calling without a token would send what the receiver can't trust or must refuse)
        return Answer(None, why)
    assert kept is not None and kept.url
    content = body(hook, event)
    for last_try in (False, True):
        try:
            answer = client.post(kept.url, content=content, headers=headers(reg, hook, kept.secret, event, content),
                                 timeout=outbound.timeouts(TIMEOUT))
            break
        except _STALE as exc:
            if last_try:
                return Answer(None, failure(exc))
        except (httpx.HTTPError, PrivateAddress, Unresolved) as exc:
            return Answer(None, failure(exc))
    if 200 <= answer.status_code < 300:
        return Answer(answer.status_code, "")
    # (the answer's body is neither kept nor shown: a hook must not make the registry a way to read
    # what a server on its network says)
    return Answer(answer.status_code, f"HTTP {answer.status_code} {answer.reason_phrase}".strip())
