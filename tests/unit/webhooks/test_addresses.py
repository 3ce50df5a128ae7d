"""With the operator's default (REGISTRY_WEBHOOKS_PRIVATE off), a hook whose host name resolves to
this machine or a private network is never connected to: the attempt fails, says why in a word, and
the cursor stays. (Refusals when a hook is added: tests/unit/operations/test_webhooks.py.)"""

from __future__ import annotations

import ipaddress
import socket
import ssl

import httpx
import msgspec
import pytest

from registry import identity, operations
from registry.config import Settings
from registry.webhooks import addresses, sending, state
from registry.webhooks.delivery import backoff
from tests.support.receiver import Receiver
from tests.support.world import WS

from .test_delivery import drain

OP, CH = identity.operator(), "cli"
NAME = "hooks.example.test"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return msgspec.structs.replace(settings, webhooks_private=False)  # (this folder's conftest allows it)


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


def resolving(monkeypatch, *ips: str) -> None:
    """NAME resolves to ``ips`` (each lookup the same); any other name doesn't resolve."""
    def getaddrinfo(host, port, *args, **kwargs):
        if host != NAME:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
                for ip in ips]
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.mark.parametrize("ips", [("127.0.0.1",), ("10.1.2.3",), ("169.254.169.254",), ("::ffff:127.0.0.1",),
                                 ("93.184.216.34", "127.0.0.1"), ("100.100.100.200",), ("::1",)])
def test_a_name_resolving_to_a_private_address_is_not_connected_to(world, receiver, monkeypatch, ips):
    resolving(monkeypatch, *ips)
    operations.add_webhook(world.reg, OP, CH, WS, "ci", f"https://{NAME}:{receiver.port}/hook", ["*"])
    before = world.reg.ledger.head()
    operations.create_package(world.reg, OP, CH, WS, "acme-ssrf", "utils")
    assert drain(world.reg, "ci") == backoff(1)
    (failed,) = state.attempts(world.reg.settings, WS, "ci")
    assert not failed.ok and failed.status is None
    assert failed.error.startswith("private address") and "REGISTRY_WEBHOOKS_PRIVATE=1" in failed.error
    assert state.cursor(world.reg.settings, WS, "ci").last == before  # (up to the event, not past it)
    assert receiver.got == [] and receiver.connections == 0  # (not even connected to)


def test_a_name_that_does_not_resolve_says_dns_only(world, monkeypatch):
    resolving(monkeypatch)
    operations.add_webhook(world.reg, OP, CH, WS, "ci", "https://nowhere.example.test/hook", ["*"])
    operations.create_package(world.reg, OP, CH, WS, "acme-dns", "utils")
    assert drain(world.reg, "ci") == backoff(1)
    assert [a.error for a in state.attempts(world.reg.settings, WS, "ci")] == ["dns"]


def test_what_is_not_public():
    assert not addresses.private(ipaddress.ip_address("93.184.216.34"))
    for ip in ("100.64.0.1", "::ffff:192.168.0.1", "fc00::1", "255.255.255.255", "224.0.0.251"):
        assert addresses.private(ipaddress.ip_address(ip)), ip


def _raised(outer: Exception, cause: BaseException) -> BaseException:
    try:
        try:
            raise cause
        except BaseException as exc:
            raise outer from exc
    except BaseException as exc:
        return exc


@pytest.mark.parametrize("exc, said", [
    (_raised(httpx.ConnectError("[Errno 111] Connection refused"), ConnectionRefusedError(111, "refused")), "refused"),
    (_raised(httpx.ConnectError("certificate verify failed: self-signed"), ssl.SSLCertVerificationError("x")), "tls"),
    (_raised(httpx.ConnectError("[Errno -2] Name or service not known"), socket.gaierror(-2, "x")), "dns"),
    (httpx.ConnectTimeout("timed out"), "timeout"), (httpx.ReadTimeout("timed out"), "timeout"),
    (_raised(httpx.ConnectError("[Errno 113] No route to host 10.9.8.7"), OSError(113, "no route")), "other"),
    (httpx.RemoteProtocolError("Server disconnected: banner SSH-2.0-OpenSSH_9.6"), "other"),
])
def test_a_failure_is_said_in_a_word_never_its_text(exc, said):
    assert sending.failure(exc) == said
