"""How things read to a person: publishers, channels, ledger paths, JSON records. Pure."""

from __future__ import annotations

import difflib
import json
from datetime import UTC, datetime

HOW = {"cli": "by hand (command line)", "api": "API", "web": "web UI", "upload": "upload",
       "import": "import", "system": "the registry itself"}


def describe(p) -> str:
    """A publisher (data.Publisher) in words."""
    if p.kind == "pipeline":
        where = p.pipeline_repository or p.pipeline.repository_uuid
        branch = f"branch {p.pipeline.branch}" if p.pipeline.branch else "no branch (a tag)"
        env = f", deployment environment {p.pipeline.environment_uuid}" if p.pipeline.environment_uuid else ""
        return f"the pipeline of repository {where}, on {branch}{env}"
    return p.by + (f" with API token \u201c{p.token_label}\u201d" if p.token_label else "")


def identity(p) -> tuple:
    """What must stay the same from release to release: the publishing pipeline (its repository and
    deployment environment; each run has its own uuid) and its branch; or the person."""
    if p.kind == "pipeline":
        return ("pipeline", p.pipeline.repository_uuid, p.pipeline.environment_uuid, p.pipeline.branch)
    return ("person", p.by)


def diff(old: list[str], new: list[str]) -> tuple[str, list[tuple[str, str]]]:
    """(added/removed/changed, [(op, line)]): a record's whole JSON, each line marked "+", "-" or " "."""
    if old and new:  # (unified_diff's first three lines are its headers)
        return "changed", [(line[0], line[1:]) for line in difflib.unified_diff(old, new, n=100_000, lineterm="")][3:]
    return ("removed", [("-", line) for line in old]) if old else ("added", [("+", line) for line in new])


def how(trailers) -> str:
    """How a commit's change came in: a pipeline run, or its channel."""
    trailers = dict(trailers)
    if "Pipeline-Uuid" in trailers:
        return "pipeline run"
    channel = trailers.get("Channel", "")
    return HOW.get(channel, channel or "unknown")


def what(path: str) -> str:
    """The record at a ledger path, named for a person."""
    parts = path.removesuffix(".json").split("/")
    if parts[0] == "tokens":
        return "API token"
    if parts[0] != "workspaces" or len(parts) < 3:
        return path
    rest = parts[2:]
    if rest[0] == "packages" and len(rest) >= 5:
        return f"package {rest[3]}" if len(rest) == 5 else f"version {rest[3]} {rest[-1]}"
    if rest[0] == "deleted-files":
        return f"deleted filenames of {rest[-1]}"
    names = {"projects": "project", "repositories": "repository", "workspace": "workspace",
             "pipelines-trust": "pipelines trust", "trusts": "trusted issuer"}
    return f"{names.get(rest[0], rest[0])} {rest[-1] if len(rest) > 1 else parts[1]}"


def record_lines(data: bytes | None, path: str) -> list[str]:
    """A record as indented JSON lines (a token's hash left out: not a secret, but no one's business)."""
    if data is None:
        return []
    try:
        doc = json.loads(data)
    except ValueError:
        return data.decode("utf-8", "replace").splitlines()
    if path.startswith("tokens/") and isinstance(doc, dict):
        doc["sha256"] = "(not shown)"
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False).splitlines()


def size(n: int) -> str:
    value: float = n
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return str(value)


def when(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if at else "never"


def ago(at: datetime | None, now: datetime | None = None) -> str:
    if at is None:
        return "never"
    seconds = int(((now or datetime.now(UTC)) - at).total_seconds())
    for span, unit in ((86400 * 365, "year"), (86400 * 30, "month"), (86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= span:
            count = seconds // span
            return f"{count} {unit}{'s' if count > 1 else ''} ago"
    return "just now"
