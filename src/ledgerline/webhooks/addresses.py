"""Which URLs a webhook may be sent to, and which address its request connects to.

Two checks (docs/webhooks.md, "Addresses"):

- at create and update, the URL itself: http or https, a host, no credentials; a host that
  is a literal address (or `localhost`) outside the public internet is refused;
- at every send, every address the host resolves to: one outside the public internet refuses
  the whole attempt, and the request then connects to the address that was checked (the URL
  keeps its host name for the `Host` header and TLS), so a second, different DNS answer
  (DNS rebinding) is never used.

`LEDGERLINE_WEBHOOK_ALLOW_PRIVATE=true` lifts both, for a receiver on the operator's network.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressRefused(ValueError):
    """The URL or its host's address may not be sent to; the message says why."""


class NotPublic(AddressRefused):
    """A well-formed URL whose host is not a public address: refused by the deployment's
    rule (`LEDGERLINE_WEBHOOK_ALLOW_PRIVATE`), not by its form."""


def is_public(address: IPAddress) -> bool:
    """An address on the public internet: not private, loopback, link-local, unspecified,
    multicast, reserved or otherwise special (an IPv4-mapped IPv6 address by its IPv4)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_unspecified
        or address.is_multicast
        or address.is_reserved
    )


def literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as written in the URL, lower case, without brackets
    port: int


def parse_url(url: str) -> Target:
    """The URL's scheme, host and port; AddressRefused names what is wrong with it."""
    if len(url) > MAX_URL_LENGTH:
        raise AddressRefused(f"must be at most {MAX_URL_LENGTH} characters")
    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in url):
        raise AddressRefused("must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise AddressRefused(f"is not a valid URL ({exc})") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise AddressRefused("must be an http or https URL")
    if parts.username is not None or parts.password is not None:
        raise AddressRefused("must not carry credentials (user:password@)")
    host = (parts.hostname or "").lower()
    if not host:
        raise AddressRefused("must name a host")
    return Target(scheme, host, port or (443 if scheme == "https" else 80))


def check_url(url: str, *, allow_private: bool) -> Target:
    """The checks made when an endpoint's URL is set (create, update)."""
    target = parse_url(url)
    if allow_private:
        return target
    literal = literal_address(target.host)
    if literal is not None and not is_public(literal):
        raise NotPublic(
            f"{literal} is a private, loopback, link-local or otherwise non-public address"
        )
    if target.host == "localhost" or target.host.endswith(".localhost"):
        raise NotPublic(f"{target.host} is a loopback name")
    return target


def resolve(target: Target, *, allow_private: bool) -> IPAddress:
    """The address to connect to: every address the host resolves to is checked, and the
    first is used. AddressRefused when one of them is not public (unless allowed) or the
    name does not resolve."""
    literal = literal_address(target.host)
    if literal is not None:
        found = [literal]
    else:
        try:
            infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise AddressRefused(f"{target.host} does not resolve ({exc})") from exc
        found = []
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            if address not in found:
                found.append(address)
        if not found:
            raise AddressRefused(f"{target.host} does not resolve")
    if not allow_private:
        refused = [str(address) for address in found if not is_public(address)]
        if refused:
            raise NotPublic(
                f"{target.host} resolves to a non-public address ({', '.join(refused)})"
            )
    return found[0]
