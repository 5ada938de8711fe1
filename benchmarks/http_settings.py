"""The hub's settings with the bench's URLconf: `benchmarks/status_poll.py` serves the hub
with one extra route, a bare Django JSON view, to compare the API against."""

from omtx_hub.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.http_urls"
