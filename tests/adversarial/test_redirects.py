"""Open redirects, as a class: whatever a request's path, query or form holds, every Location the
registry answers with keeps a browser on the registry's own origin (a path with exactly one leading
'/'). Generated paths are sent exactly as a server hands them over (`//`, `%2F`, `\\` and all), to
every kind of route that redirects: the `simple` segment other indexes use, names that aren't
normalised, missing trailing slashes, past indexes, files, browsers sent to the UI, the UI's own."""

from __future__ import annotations

import socket
from urllib.parse import quote, urljoin, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry.web.guards import keeps_origin, secured
from tests.support.asgi import call
from tests.support.world import WS
from tests.unit.web.ui.test_pages import csrf_of

HOST = "registry.test"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
# what a path segment can be made of to fool a browser or a router
TRICKS = ["", ".", "..", "evil.example", "%2F", "%2f%2F", "%5C", "\\", "/", "@evil.example", "evil.example:80",
          "%09", "%0d%0a", "%00", "http:", "https:", "simple", "Acme.Utils", "acme-utils", "ACME", "@2026-01-01",
          "@HEAD", "1.0", "x.whl", "x.whl.metadata", "pypi", "json", "-", "_", "api", "%E2%80%AE", "ü", "%", "?"]
PREFIXES = ["", "/simple", f"/{WS}", f"/{WS}/simple", "/-", f"/-/{WS}", f"/-/{WS}/packages", "/api/workspaces",
            f"/{WS}/@2026-01-01T00:00:00Z", "/_", "/_/static"]


def _origin_kept(location: str) -> bool:
    landed = urlsplit(urljoin(f"http://{HOST}/a/b/", location))
    return landed.scheme == "http" and landed.netloc == HOST and keeps_origin(location)


paths = st.builds(lambda prefix, segments, slash: prefix + "/" + "/".join(segments) + ("/" if slash else ""),
                  st.sampled_from(PREFIXES), st.lists(st.sampled_from(TRICKS), min_size=1, max_size=4), st.booleans())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=paths, query=st.sampled_from(["", "format=json", "next=//evil.example/", "x=%5C%5Cevil.example"]),
       browser=st.booleans(), who=st.sampled_from([None, "reader@acme.test", "outsider@acme.test"]))
async def test_no_location_leaves_the_origin(client, world, published, path, query, browser, who):
    headers = [("accept", BROWSER if browser else "application/vnd.pypi.simple.v1+json")]
    if who:
        headers += list(world.basic(who).items())
    for method in ("GET", "HEAD"):
        answer = await call(client.served, method, path + (f"?{query}" if query else ""), headers)
        assert answer.status < 500, (method, path, answer.status, answer.body[:300])
        location = answer.header("location")
        if location is not None:
            assert _origin_kept(location), (method, path, location)


@pytest.mark.parametrize("next_", ["//evil.example/", "/\\evil.example", "https://evil.example/", "/-/../..//evil",
                                   "\t//evil.example", "/%2F%2Fevil.example", "javascript:alert(1)"])
async def test_sign_in_goes_nowhere_but_here(client, world, next_):
    r = await client.post("/-/_/signin", data={"email": "reader@acme.test", "token": world.tokens["reader@acme.test"],
                                               "next": next_, "csrf": await csrf_of(client)}, follow_redirects=False)
    assert r.status_code == 303 and _origin_kept(r.headers["location"]), r.headers.get("location")


@pytest.mark.parametrize("location", ["//evil.example/", "/\\evil.example", "\\\\evil.example", "/\t/evil.example",
                                      "evil.example", "/ok/\r\nSet-Cookie: x=1"])
def test_the_last_line_rewrites_what_a_handler_got_wrong(location):
    """Whatever a handler (ours or the framework's) answers, the front door sends no Location that
    leaves the origin: the mechanism, not each handler, is what holds."""
    headers = secured([(b"location", location.encode("latin-1")), (b"content-type", b"text/plain")])
    sent = dict(headers)[b"location"].decode("latin-1")
    assert _origin_kept(sent), sent


def _raw(url: str, target: str) -> tuple[int, str | None]:
    """A request line sent as is (no client normalises it): the status and the Location."""
    host, port = urlsplit(url).hostname, urlsplit(url).port
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode("latin-1"))
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    location = next((line.split(":", 1)[1].strip() for line in head[1:] if line.lower().startswith("location:")), None)
    return int(head[0].split()[1]), location


@pytest.mark.parametrize("target", ["/simple//evil.example/", "/simple/%2F%2Fevil.example/", "/simple/%5Cevil.example/",
                                    "/simple/%5C%5Cevil.example/", "//evil.example/simple/x/",
                                    "/default/simple//evil.example",
                                    "/simple///evil.example/?a=b", "/simple/%09/evil.example/"])
def test_a_real_server_redirects_nowhere_else(server, target):
    """The issue's requests, through granian's own decoding of the request line."""
    status, location = _raw(server.url, target)
    assert status < 500 and (location is None or _origin_kept(location)), (target, status, location)


def test_what_a_path_held_stays_quoted(server):
    status, location = _raw(server.url, "/simple/" + quote("a b<script>", safe="") + "/")
    assert status == 301 and location == "/a%20b%3Cscript%3E/"
