from typing import Any

from django.test import RequestFactory

from ratelimit.client_ip import client_ip


def ip_of(settings: Any, peer: str, forwarded: str | None = None, proxies: list[str] | None = None) -> str:
    settings.OMTX_TRUSTED_PROXIES = proxies or []
    extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
    return client_ip(RequestFactory().get("/", REMOTE_ADDR=peer, **extra))


def test_without_trusted_proxies_the_peer_is_the_client(settings: Any) -> None:
    assert ip_of(settings, "198.51.100.7", "203.0.113.1") == "198.51.100.7"


def test_an_untrusted_peer_cannot_name_another_client(settings: Any) -> None:
    assert ip_of(settings, "198.51.100.7", "203.0.113.1", ["10.0.0.0/8"]) == "198.51.100.7"


def test_behind_trusted_proxies_the_right_most_untrusted_address_is_the_client(settings: Any) -> None:
    # The client wrote "1.2.3.4" itself; the proxies appended what they saw.
    chain = "1.2.3.4, 203.0.113.5, 10.0.0.2"
    assert ip_of(settings, "10.0.0.1", chain, ["10.0.0.0/8"]) == "203.0.113.5"


def test_a_chain_of_trusted_hops_only_is_the_left_most_hop(settings: Any) -> None:
    assert ip_of(settings, "10.0.0.1", "10.0.0.3, 10.0.0.2", ["10.0.0.0/8"]) == "10.0.0.3"


def test_garbage_in_forwarded_for_stops_at_the_last_real_hop(settings: Any) -> None:
    assert ip_of(settings, "10.0.0.1", "203.0.113.5, not-an-ip", ["10.0.0.0/8"]) == "10.0.0.1"
    assert ip_of(settings, "10.0.0.1", "", ["10.0.0.0/8"]) == "10.0.0.1"


def test_ipv6_addresses_are_normalised(settings: Any) -> None:
    assert ip_of(settings, "2001:DB8::0:1") == "2001:db8::1"
    assert ip_of(settings, "::1", "2001:db8::7", ["::1/128"]) == "2001:db8::7"
