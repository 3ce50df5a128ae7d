"""outbound.client: whatever the HTTP client's machinery raises reaches its caller as an httpx error
(`TransportFault`, said with the original's class and text), while it sends and while the answer is
read; httpx's own errors and the request body's own pass as themselves. Every caller of a client
catches ``httpx.HTTPError``, so this is what keeps a race inside the client from being a 500."""

from __future__ import annotations

import socket
import ssl
import threading

import anyio
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry import outbound
from registry.errors import RegistryError

FOREIGN = st.sampled_from([AttributeError, TypeError, ValueError, KeyError, RuntimeError, OSError,
                           ConnectionResetError, BrokenPipeError, ssl.SSLError, anyio.BrokenResourceError,
                           anyio.ClosedResourceError, anyio.EndOfStream])
HTTPX = st.sampled_from([httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError, httpx.ReadTimeout])
WORDS = st.text(st.characters(codec="utf-8"), max_size=40)


class Breaking(httpx.AsyncByteStream):
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    async def __aiter__(self):
        yield b"part of it"
        raise self.exc


def transport(exc: BaseException, phase: str) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        if phase == "send":
            raise exc
        return httpx.Response(200, stream=Breaking(exc))
    return httpx.MockTransport(handle)


async def fetch(inner: httpx.AsyncBaseTransport, **request) -> bytes:
    async with outbound.client(outbound.timeouts(5), transport=inner) as http:
        response = await http.request("POST", "http://primary.test/x", **request)
        return response.content


@settings(max_examples=60, deadline=None)
@given(kind=FOREIGN, text=WORDS, phase=st.sampled_from(["send", "answer"]))
def test_any_other_error_of_the_transport_becomes_an_httpx_error_that_names_it(kind, text, phase):
    exc = kind(text)

    async def run():
        with pytest.raises(httpx.HTTPError) as raised:
            await fetch(transport(exc, phase), content=b"body")
        return raised.value

    got = anyio.run(run)
    assert isinstance(got, outbound.TransportFault) and got.__cause__ is exc
    said = outbound.describe(got, 5)
    assert said.startswith("TransportFault: the connection broke inside the HTTP client")
    own = str(exc).strip()  # (its own words, as it says them)
    assert said.endswith(f"({kind.__name__}: {own})" if own else f"({kind.__name__})"), said


@settings(max_examples=20, deadline=None)
@given(kind=HTTPX, phase=st.sampled_from(["send", "answer"]))
def test_httpx_errors_pass_as_themselves(kind, phase):
    exc = kind("it went away")

    async def run():
        with pytest.raises(httpx.HTTPError) as raised:
            await fetch(transport(exc, phase), content=b"body")
        return raised.value

    assert anyio.run(run) is exc


@settings(max_examples=20, deadline=None)
@given(kind=st.one_of(FOREIGN, st.just(RegistryError)))
def test_an_error_of_the_request_body_itself_passes_as_itself(kind):
    """(a replica's caller hung up mid-upload: that is said as itself, not as the primary's fault)"""
    exc = kind("the client hung up")

    async def body():
        yield b"first part"
        raise exc

    async def run():
        with pytest.raises(BaseException) as raised:
            await fetch(httpx.MockTransport(lambda request: httpx.Response(200)), content=body())
        return raised.value

    assert anyio.run(run) is exc


class Parts(httpx.AsyncByteStream):
    def __init__(self, *parts: bytes) -> None:
        self.parts = parts

    async def __aiter__(self):
        for part in self.parts:
            yield part


async def test_a_client_still_talks_and_streams():
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, stream=Parts(b"got ", request.content))

    async with outbound.client(outbound.timeouts(5), transport=httpx.MockTransport(handle)) as http:
        assert (await http.post("http://primary.test/x", content=b"it")).content == b"got it"
        async with http.stream("POST", "http://primary.test/x", content=b"more") as response:
            assert response.status_code == 201 and [p async for p in response.aiter_raw()] == [b"got ", b"more"]
        made_whole = httpx.MockTransport(lambda request: httpx.Response(200, content=b"whole"))
    async with outbound.client(outbound.timeouts(5), transport=made_whole) as http:
        assert (await http.get("http://primary.test/x")).content == b"whole"


def test_the_proxies_the_environment_names_are_used_and_guarded(monkeypatch):
    """(httpx mounts them only when it is given no transport: the guard wraps what it mounted)"""
    seen: list[bytes] = []
    listener = socket.create_server(("127.0.0.1", 0))

    def proxy() -> None:  # a forward proxy that answers every request itself
        for _ in range(2):
            conn, _ = listener.accept()
            with conn:
                seen.append(conn.recv(65536).split(b"\r\n")[0])
                if len(seen) == 1:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\nvia proxy")
                # (the second: closed without a word, a proxy's own failure)

    threading.Thread(target=proxy, daemon=True).start()
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{listener.getsockname()[1]}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)

    async def run():
        async with outbound.client(outbound.timeouts(5)) as http:
            assert (await http.get("http://primary.test/x?a=1")).content == b"via proxy"
            with pytest.raises(httpx.HTTPError):
                await http.get("http://primary.test/y")

    anyio.run(run)
    listener.close()
    assert seen == [b"GET http://primary.test/x?a=1 HTTP/1.1", b"GET http://primary.test/y HTTP/1.1"]
