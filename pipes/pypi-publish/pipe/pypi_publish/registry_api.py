"""The registry's HTTP interface, as far as the pipe needs it: standard library only, with timeouts.

Refusals come back as RegistryRefusal carrying the status and the registry's own reason (its
plain-text body, or the `detail`/`errors` of a JSON body): the reason is what a person acts on."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import quote

from .console import Console

TIMEOUT = 30
SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"


class Unreachable(Exception):
    """No HTTP answer at all: DNS, connection, TLS or timeout."""


class RegistryRefusal(Exception):
    def __init__(self, status: int, reason: str, url: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status, self.reason, self.url = status, reason, url


@dataclass
class Basic:
    username: str
    password: str

    def header(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


def _reason(body: bytes) -> str:
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return " ".join(text.split())[:500] or "(no reason given)"
    if isinstance(data, dict):
        errors = data.get("errors")
        if isinstance(errors, list) and errors:
            return "; ".join(str(e.get("description", e)) if isinstance(e, dict) else str(e) for e in errors)
        for key in ("detail", "message", "title"):
            if data.get(key):
                return str(data[key])
    return text[:500]


def call(console: Console, method: str, url: str, auth: Basic | None = None, body: dict | None = None,
         accept: str = "application/json", parse: bool = True) -> dict | None:
    """The JSON answer; RegistryRefusal with the registry's reason, or Unreachable."""
    request = urllib.request.Request(url, method=method, headers={"Accept": accept, "User-Agent": "pypi-publish-pipe"})
    if auth is not None:
        request.add_header("Authorization", auth.header())
    if body is not None:
        request.data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            console.debug(f"{method} {url} -> {response.status}")
            payload = response.read()
    except urllib.error.HTTPError as exc:
        console.debug(f"{method} {url} -> {exc.code}")
        raise RegistryRefusal(exc.code, _reason(exc.read()), url) from None
    except (urllib.error.URLError, OSError) as exc:
        raise Unreachable(f"Could not reach the registry at {url}: {getattr(exc, 'reason', exc)}") from None
    if not parse:
        return None
    try:
        return json.loads(payload)
    except ValueError:
        raise RegistryRefusal(response.status, "the answer is not JSON; is REGISTRY_URL this registry's "
                              "workspace URL?", url) from None


def existing_files(console: Console, registry_url: str, name: str, auth: Basic) -> dict[str, str]:
    """{filename: sha256} the registry already has for a package (empty when it has none)."""
    try:
        page = call(console, "GET", f"{registry_url}{quote(name)}/", auth, accept=SIMPLE_JSON)
    except RegistryRefusal as exc:
        if exc.status == 404:  # no such package, or no files yet: the upload will say which
            return {}
        raise
    return {f["filename"]: f.get("hashes", {}).get("sha256", "") for f in page.get("files", [])}


def check_access(console: Console, registry_url: str, auth: Basic) -> None:
    """Fail early (before a long build) when the registry refuses the credentials."""
    call(console, "GET", registry_url, auth, accept=SIMPLE_JSON, parse=False)


def version_url(origin: str, workspace: str, name: str, version: str) -> str:
    return f"{origin}/api/workspaces/{quote(workspace)}/packages/pypi/{quote(name)}/versions/{quote(version)}"


def version_details(console: Console, origin: str, workspace: str, name: str, version: str,
                    auth: Basic) -> dict:
    return call(console, "GET", version_url(origin, workspace, name, version), auth)
