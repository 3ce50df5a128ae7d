"""Where a webhook may connect: not to this machine or its private networks, unless the operator
allows it (`webhooks_private`, REGISTRY_WEBHOOKS_PRIVATE=1). A workspace admin adds hooks, and each
attempt's outcome is shown: a hook to an internal address would make the registry a port scanner.

A hook's URL is checked when it is added (an IP literal, `localhost`); its host is checked again as
it is connected to: resolved once, every address checked, and only a checked address connected to
(`PinnedBackend`), so a second lookup can't answer another (DNS rebinding). TLS and `Host` keep the name.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

import httpcore

from ..config import Settings

ALLOW = "the operator allows that with REGISTRY_WEBHOOKS_PRIVATE=1"
_CGNAT = ipaddress.ip_network("100.64.0.0/10")


class PrivateAddress(Exception):
    """The hook's host is (or resolves to) a loopback, private or otherwise non-public address."""


class Unresolved(Exception):
    """The hook's host name did not resolve."""


def private(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Not an address on the public internet (an IPv4-mapped IPv6 address is judged as its IPv4)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (not ip.is_global or ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast
            or ip.is_reserved or ip.is_unspecified or ip in _CGNAT)


def local_name(host: str) -> bool:
    host = host.rstrip(".").lower()
    return host == "localhost" or host.endswith(".localhost")


def refusal(url: str, settings: Settings) -> str | None:
    """Why a hook may not be added with ``url`` (its host an internal IP literal or localhost), or None."""
    if settings.webhooks_private:
        return None
    host = urlsplit(url).hostname or ""
    try:
        internal = private(ipaddress.ip_address(host.split("%")[0]))
    except ValueError:  # (a name: checked as it is connected to)
        internal = local_name(host)
    if not internal:
        return None
    return (f"its host {host} is this machine or a private network, which webhooks may not reach on this registry "
            f"({ALLOW}); give the receiver's public https:// URL")


def checked(host: str, port: int) -> list[str]:
    """``host``'s addresses, each public; raises PrivateAddress if any is not, Unresolved if none."""
    if local_name(host):
        raise PrivateAddress(host)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Unresolved(host) from exc
    found = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not found:
        raise Unresolved(host)
    if any(private(ipaddress.ip_address(a.split("%")[0])) for a in found):
        raise PrivateAddress(host)
    return found


class PinnedBackend(httpcore.NetworkBackend):
    """httpcore's own sockets, to an address `checked` just said is public (not the name, which a
    second lookup could resolve elsewhere); TLS's server name and the Host header stay the hook's."""

    def __init__(self) -> None:
        self._sockets = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None) -> httpcore.NetworkStream:
        last: Exception | None = None
        for address in checked(host, port):
            try:
                return self._sockets.connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:  # (the next address, as a name's connection would)
                last = exc
        assert last is not None
        raise last

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None) -> httpcore.NetworkStream:
        raise PrivateAddress(path)

    def sleep(self, seconds: float) -> None:
        self._sockets.sleep(seconds)
