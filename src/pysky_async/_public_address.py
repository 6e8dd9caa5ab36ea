"""Where a ``did:web`` host may be fetched from: public addresses only (no SSRF into a private network).

A ``did:web`` DID names a host chosen by whoever minted it (a service-auth token's issuer, a
labeler, a repo on the firehose), so fetching its ``/.well-known/did.json`` must not reach the
fetching machine's loopback, private network or cloud metadata service. The host is resolved
once here, every address it resolves to is checked, and the request is then sent to the
checked address (``pinned``), so a second DNS answer (DNS rebinding) is never used.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def ip_literal(host: str) -> IpAddress | None:
    """``host`` as an IP address when it is written as one (``"10.0.0.1"``, ``"[::1]"``), else None."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def is_public(address: IpAddress) -> bool:
    """True for a globally routable unicast address: not loopback, private, link-local, shared
    (CGNAT), multicast, reserved or unspecified; an IPv4 address mapped or embedded into IPv6 is
    judged as the IPv4 address it carries."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo or (None, None))[1]
        if embedded is not None and not is_public(embedded):
            return False
    return address.is_global and not address.is_multicast


async def lookup(host: str, port: int) -> list[IpAddress]:
    """Every address ``host`` resolves to (``socket.gaierror`` when it does not resolve)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(info[4][0]) for info in infos]


async def public_address(host: str, port: int) -> IpAddress:
    """The address to connect to for ``host``: raises ``NotPublic`` when ``host`` is, or resolves
    to, any non-public address (``socket.gaierror`` when it does not resolve)."""
    literal = ip_literal(host)
    if literal is not None:
        addresses = [literal]
    elif host.lower().rstrip(".") == "localhost" or host.lower().endswith(".localhost"):
        raise NotPublic(host, "localhost")
    else:
        addresses = await lookup(host, port)
        if not addresses:
            raise socket.gaierror(f"{host} resolves to no address")
    for address in addresses:
        if not is_public(address):
            raise NotPublic(host, str(address))
    return addresses[0]


class NotPublic(Exception):
    """``host`` is, or resolves to, ``address``, which is not a public address (internal; the
    identity resolver turns it into an ``IdentityNotFound``)."""

    def __init__(self, host: str, address: str) -> None:
        self.host = host
        self.address = address
        super().__init__(f"{host} is {address}" if host != address else host)


def url_host(address: IpAddress) -> str:
    """The address as a URL's host (``[...]`` around IPv6)."""
    return f"[{address}]" if address.version == 6 else str(address)
