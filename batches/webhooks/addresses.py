"""Which webhook URLs the hub will POST to.

A URL names a host; the hub refuses any host that resolves to an address that is not
globally routable (loopback, private, link-local — the cloud metadata service at
169.254.169.254 among them —, shared, reserved, multicast), unless
OMTX_WEBHOOK_ALLOW_PRIVATE is on. Checked at submission, for a clear 400, and again at
every delivery, because DNS can change in between: the sender connects to the very
address it checked (batches/webhooks/http.py), so a second lookup cannot swap it.
"""

import ipaddress
import socket
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from omtx_hub.errors import InvalidInput

MAX_URL_LENGTH = 2000
SCHEMES = {"http": 80, "https": 443}

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# IPv6 prefixes whose last 32 bits are an IPv4 address the packet goes to.
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


class Refused(Exception):
    """A URL the hub will not POST to; the message says why."""

    def __init__(self, message: str, *, code: str = "invalid_webhook_url") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    # Path and query, as sent in the request line.
    path: str
    address: str


def webhook_url_check(url: str) -> None:
    """InvalidInput (a 400) unless the hub may POST to `url`."""
    try:
        resolve_target(url)
    except Refused as refused:
        raise InvalidInput(refused.message, code=refused.code, details={"field": "webhook_url"}) from None


def resolve_target(url: str, *, timeout: float | None = None) -> Target:
    """Parse, resolve and check `url`; the first allowed address to connect to. The DNS
    lookup gives up after `timeout` seconds (default OMTX_WEBHOOK_TIMEOUT_SECONDS)."""
    scheme, host, port, path = _parse(url)
    addresses = _resolve(host, port, settings.OMTX_WEBHOOK_TIMEOUT_SECONDS if timeout is None else timeout)
    allowed = [address for address in addresses if address_allowed(address)]
    if len(allowed) < len(addresses):
        raise Refused(
            f"webhook_url's host {host} resolves to a private, loopback, link-local or reserved address.",
            code="webhook_url_not_public",
        )
    return Target(scheme=scheme, host=host, port=port, path=path, address=str(allowed[0]))


def address_allowed(address: Address) -> bool:
    if settings.OMTX_WEBHOOK_ALLOW_PRIVATE:
        return True
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if isinstance(address, ipaddress.IPv6Address) and not all(map(_public, embedded_ipv4(address))):
        return False
    return _public(address)


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 form routes to: 6to4 (2002::/16), Teredo (server and
    client), NAT64 (64:ff9b::/96) and IPv4-compatible (::a.b.c.d). 2002:7f00:1:: reaches
    127.0.0.1 as surely as 127.0.0.1 does, so each must pass the rule too."""
    embedded = [address.sixtofour] if address.sixtofour is not None else []
    if address.teredo is not None:
        embedded.extend(address.teredo)
    if address in NAT64 or address in IPV4_COMPATIBLE:
        embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return embedded


def _public(address: Address) -> bool:
    return address.is_global and not address.is_multicast


def _parse(url: str) -> tuple[str, str, int, str]:
    if len(url) > MAX_URL_LENGTH:
        raise Refused(f"webhook_url is longer than {MAX_URL_LENGTH} characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise Refused("webhook_url is not a URL.") from None
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise Refused("webhook_url must be an http:// or https:// URL with a host.")
    if parts.username is not None or parts.password is not None:
        raise Refused("webhook_url must not carry credentials; deliveries are signed instead.")
    if any(ord(char) < 33 for char in url):
        raise Refused("webhook_url must not contain spaces or control characters.")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port or SCHEMES[parts.scheme], path


def _resolve(host: str, port: int, timeout: float) -> list[Address]:
    try:
        infos = _getaddrinfo(host, port, timeout)
    except (OSError, UnicodeError):
        raise Refused(f"webhook_url's host {host} does not resolve.", code="webhook_url_unresolved") from None
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not addresses:
        raise Refused(f"webhook_url's host {host} does not resolve.", code="webhook_url_unresolved")
    return addresses


def _getaddrinfo(host: str, port: int, timeout: float) -> list[Any]:
    """socket.getaddrinfo, given up on after `timeout` seconds (TimeoutError). getaddrinfo
    itself cannot be interrupted: the lookup finishes in a daemon thread of its own, bounded
    by the resolver's own timeouts, and its answer is dropped."""
    answer: list[Any] = []
    failure: list[BaseException] = []

    def lookup() -> None:
        try:
            answer.extend(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except (OSError, UnicodeError) as exc:
            failure.append(exc)

    thread = threading.Thread(target=lookup, name="webhook-dns", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"no DNS answer for {host} within {timeout:g} s")
    if failure:
        raise failure[0]
    return answer
