"""One webhook POST, to the address the URL check resolved (no second DNS lookup), with a
timeout on the connection and on each read, no redirects followed, and at most an excerpt
of the answer read. Runs in the sender's threads: no database access here."""

import http.client
import socket
import ssl
import time
from dataclasses import dataclass

from batches.webhooks.addresses import Refused, Target, resolve_target

EXCERPT_BYTES = 1024


@dataclass(frozen=True)
class Answer:
    """What one attempt got: a status code, or an error (and whether retrying may help)."""

    status_code: int | None
    duration_ms: int
    error: str = ""
    excerpt: str = ""
    retry_after: str | None = None
    # False when the URL itself is refused (not public any more): no retry will help.
    retryable: bool = True


class PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to `address`, while the request names the URL's host."""

    def __init__(self, target: Target, *, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self.address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """As PinnedHTTPConnection, with TLS verified against the URL's host name."""

    def __init__(self, target: Target, *, timeout: float) -> None:
        self.tls = ssl.create_default_context()
        super().__init__(target.host, target.port, timeout=timeout, context=self.tls)
        self.address = target.address

    def connect(self) -> None:
        raw = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self.tls.wrap_socket(raw, server_hostname=self.host)


def post(*, url: str, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
    started = time.monotonic()
    try:
        target = resolve_target(url)
    except Refused as refused:
        retryable = refused.code == "webhook_url_unresolved"  # DNS may come back; a private address stays
        return Answer(None, _ms(started), error=refused.message, retryable=retryable)
    connection_class = PinnedHTTPSConnection if target.scheme == "https" else PinnedHTTPConnection
    connection = connection_class(target, timeout=timeout)
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        excerpt = response.read(EXCERPT_BYTES).decode("utf-8", errors="replace")
        return Answer(response.status, _ms(started), excerpt=excerpt, retry_after=response.getheader("Retry-After"))
    except TimeoutError:
        return Answer(None, _ms(started), error=f"timed out after {timeout:g} s")
    except (OSError, http.client.HTTPException) as exc:
        return Answer(None, _ms(started), error=repr(exc)[:500])
    finally:
        connection.close()


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
