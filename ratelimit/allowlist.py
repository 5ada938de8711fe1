"""Allow-listed networks (AllowedNetwork rows): never blocked, never limited by address.
Each process holds the list for RATE_LIMIT_BLOCKLIST_REFRESH_SECONDS."""

import threading
import time

from django.conf import settings

from ratelimit.client_ip import Network, in_networks, parse_networks
from ratelimit.models import AllowedNetwork

_lock = threading.Lock()
_held: tuple[float, tuple[Network, ...]] = (float("-inf"), ())


def allowed_networks() -> tuple[Network, ...]:
    global _held
    read_at, networks = _held
    if time.monotonic() - read_at < settings.RATE_LIMIT_BLOCKLIST_REFRESH_SECONDS:
        return networks
    with _lock:
        networks = parse_networks(tuple(AllowedNetwork.objects.order_by("network").values_list("network", flat=True)))
        _held = (time.monotonic(), networks)
    return networks


def is_allowed(ip: str) -> bool:
    return in_networks(ip, allowed_networks())


def hold_allowed_networks(networks: tuple[Network, ...] = ()) -> None:
    """Hold this list until forgotten, without reading the table (the test suite)."""
    global _held
    _held = (float("inf"), networks)


def forget_allowed_networks() -> None:
    global _held
    _held = (float("-inf"), ())
