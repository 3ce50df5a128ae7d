"""The event log (REGISTRY_EVENT_LOG=on|json; off by default): one line per ledger commit this
process makes and one per upload it refuses, each with the id of the request that caused it (the
`X-Request-Id` its answer carried, and the access log's `request_id`), so a log shipper can follow a
request from its access line to what it changed. A served worker writes them to its stderr, as the
access log; a CLI command writes none (its commits are in the ledger, as every one is).

A commit's line is what the webhooks make of it (webhooks/events.py: its event type, workspace,
package, version; who made it, and how), for commits no webhook hears of (a token created, a sign-in)
its Action; never more than the commit's trailers say, so never a secret (the ledger holds none). A
refused upload's line says its status and refusal class (as the metrics count it), the workspace and
the package the form named, once that was a valid name.

Registry.transact tells it of every commit (`datadir.COMMITTED`: the ledger's layers know nothing of
the web). The request's id reaches the commit through a contextvar the access log's middleware sets
(`serving`): worker threads run in a copy of the request's context, so a commit made there sees it.
"""

from __future__ import annotations

import json
import logging
import re
import time
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import IO

from .. import datadir
from ..audit import T, action
from ..config import LOG_FORMAT
from ..ledger import Commit
from ..webhooks.events import event, provenance

log = logging.getLogger("registry.events")
_MODE = ["off"]
_PLAIN = re.compile(r"[A-Za-z0-9._:@+=/{}\-]+")  # a value written as it is in a text line; else JSON-quoted


@dataclass
class Request:
    """What the log knows of the request being served: its id, and the package an upload names."""

    id: str
    package: str | None = None


_REQUEST: ContextVar[Request | None] = ContextVar("registry.events.request", default=None)


def configure(mode: str, stream: IO[str] | None = None) -> None:
    """``mode``: off, on (text lines) or json (one JSON object a line); with a ``stream`` (a served
    worker's stderr), the lines go there rather than through the root logger's handler."""
    _MODE[0] = mode.lower()
    if committed not in datadir.COMMITTED:
        datadir.COMMITTED.append(committed)
    log.setLevel(logging.INFO)
    log.disabled = _MODE[0] == "off"
    if stream is not None and not log.disabled and not log.handlers:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(message)s" if _MODE[0] == "json" else LOG_FORMAT))
        log.addHandler(handler)
        log.propagate = False


def enabled() -> bool:
    return _MODE[0] != "off"


def serving(request_id: str) -> Token[Request | None]:
    """The request this context serves, until `served` (the access log's middleware calls both)."""
    return _REQUEST.set(Request(request_id))


def served(token: Token[Request | None]) -> None:
    _REQUEST.reset(token)


def uploading(package: str) -> None:
    """The (canonical) package the upload being served names: its refusal's line says it."""
    if (request := _REQUEST.get()) is not None:
        request.package = package


def committed(commit: Commit) -> None:
    """A commit this process made (Registry.transact calls this for every one, once configured)."""
    if enabled():
        try:
            _write(commit_fields(commit))
        except Exception:  # (the commit is made, and durable: its answer must not become a 500)
            logging.getLogger("registry").exception("the event log's line of commit %s failed", commit.id)


def refused(error: Exception, status: int, workspace: str) -> None:
    """An upload refused, by its status and the refusal's class (`registry.errors`: a fixed set)."""
    if enabled():
        request = _REQUEST.get()
        _write({"event": "upload-refused", "status": status, "reason": type(error).__name__, "workspace": workspace,
                "package": request.package if request else None, "request_id": request.id if request else None})


def commit_fields(commit: Commit) -> dict:
    """A commit's line: the webhooks' event it is (or its Action), and who made it."""
    told, who, request = event(commit), provenance(commit), _REQUEST.get()
    fields: dict = {
        "event": told.type if told else str(action(commit)),
        "workspace": told.workspace if told else commit.trailer(T.WORKSPACE),
        "package": commit.trailer(T.PACKAGE), "version": told.version if told else None,
        "actor": who.actor, "actor_kind": who.kind, "channel": who.channel,
        "commit": commit.id, "request_id": request.id if request else None,
    }
    if told is not None and len(told.types) > 1:
        fields["types"] = told.types  # (a publish that created its package is both)
    if told is not None and told.versions:
        fields["versions"] = told.versions
    extra = {"repository": commit.trailer(T.REPOSITORY), "file": commit.trailer(T.FILE), "token_id": who.token_id,
             "pipeline_uuid": who.pipeline.pipeline_uuid if who.pipeline else None}
    return fields | {k: v for k, v in extra.items() if v is not None}


def _write(fields: dict) -> None:
    if _MODE[0] == "json":
        at = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at * 1000) % 1000:03d}Z"
        log.info("%s", json.dumps({"time": stamp, "logger": log.name, **fields}, separators=(",", ":")))
    else:
        log.info("%s", " ".join(f"{k}={_shown(v)}" for k, v in fields.items() if v is not None))


def _shown(value: object) -> str:
    """A value in a text line: as it is when plain, else quoted (a name a client chose can't start
    another field or line)."""
    if not isinstance(value, str):
        return json.dumps(value, separators=(",", ":"))  # (a number, a list of names)
    return value if _PLAIN.fullmatch(value) else json.dumps(value)
