"""The image's HEALTHCHECK: exit 0 when this container's server answers `/health` with 200.

Plain Python, no Django (a check runs every 30 s; importing the hub would cost a second and
100 MB each time). The request names a host the hub accepts, as a client would: the first
concrete ALLOWED_HOSTS entry; a check sent as `Host: 127.0.0.1` would be refused (400) by a
production hub that allows only its public name. `/health` is exempt from the HTTPS redirect.
"""

import os
import sys
import urllib.error
import urllib.request

DEFAULT_HOSTS = "localhost"


def host_header(allowed_hosts: str) -> str:
    """The first entry that names one host: `*` and `.example.org` (any subdomain) do not."""
    for entry in allowed_hosts.split(","):
        entry = entry.strip()
        if entry and entry != "*" and not entry.startswith("."):
            return entry
    return "localhost"


def main() -> int:
    port = os.environ.get("PORT", "8000")
    request = urllib.request.Request(f"http://127.0.0.1:{port}/health")
    request.add_header("Host", host_header(os.environ.get("ALLOWED_HOSTS", DEFAULT_HOSTS)))
    try:
        with urllib.request.urlopen(request, timeout=4) as response:  # nosec B310: a fixed http URL
            status: int = response.status
    except (urllib.error.URLError, OSError) as exc:
        print(f"healthcheck: {exc}", file=sys.stderr)
        return 1
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
