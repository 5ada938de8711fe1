"""The client's address. REMOTE_ADDR is the peer that opened the connection; only when that
peer is a configured trusted proxy is X-Forwarded-For read, right to left, skipping the
trusted hops: the first address no trusted proxy vouches for is the client. A forged
X-Forwarded-For from anyone else changes nothing."""

import ipaddress
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.http import HttpRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# The unspecified address, for a request without a usable REMOTE_ADDR (never bound to).
UNKNOWN = str(ipaddress.IPv4Address(0))


@lru_cache(maxsize=8)
def parse_networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def in_networks(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_ip(request: HttpRequest) -> str:
    peer = _valid(request.META.get("REMOTE_ADDR", "")) or UNKNOWN
    trusted = parse_networks(tuple(settings.OMTX_TRUSTED_PROXIES))
    if not trusted or not in_networks(peer, trusted):
        return peer
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    for hop in reversed(hops):
        address = _valid(hop)
        if address is None:
            # Garbage where an address should be: the last hop that was one is the client.
            return peer
        if not in_networks(address, trusted):
            return address
        peer = address
    return peer


def ratelimit_key(group: str, request: Any) -> str:
    """django-ratelimit's `key`: the same client address the limiter uses."""
    return client_ip(request)


def _valid(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None
