"""One webhook POST, to the address the URL check resolved (no second DNS lookup), with a
timeout on the DNS lookup, the connection and each read, an overall deadline on the whole
attempt, no redirects followed, and at most an excerpt of the answer read. Runs in the
sender's threads: no database access here.

The per-operation timeout alone does not bound an attempt: a receiver that trickles a byte
just within it holds the thread for as long as it likes. So a timer shuts the socket down
when the attempt's total time (attempt_seconds) is up; the blocked read returns at once and
the attempt is recorded as timed out."""

import contextlib
import http.client
import socket
import ssl
import threading
import time
from dataclasses import dataclass

from batches.webhooks.addresses import Refused, Target, resolve_target

EXCERPT_BYTES = 1024
# The whole attempt (DNS, connect, TLS, send, answer) may take this many per-operation timeouts.
DEADLINE_TIMEOUTS = 3


def attempt_seconds(timeout: float) -> float:
    """The overall deadline of an attempt whose every operation times out after `timeout`."""
    return DEADLINE_TIMEOUTS * timeout


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


class Deadline:
    """Shuts the attempt's socket down once `seconds` have passed: a read or write blocked on
    it returns at once. A socket attached after that is refused (TimeoutError)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self.sock: socket.socket | None = None
        self.lock = threading.Lock()
        self.timer = threading.Timer(seconds, self.expire)
        self.timer.daemon = True

    def start(self) -> None:
        self.timer.start()

    def cancel(self) -> None:
        self.timer.cancel()

    def attach(self, sock: socket.socket) -> None:
        with self.lock:
            if self.expired:
                sock.close()
                raise TimeoutError("the attempt's deadline passed while connecting")
            self.sock = sock

    def expire(self) -> None:
        with self.lock:
            self.expired = True
            if self.sock is None:
                return
            # The plain socket's shutdown, also for a TLS socket: it cuts the connection
            # under the reading thread without touching its TLS state. OSError: already closed.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(self.sock, socket.SHUT_RDWR)


class PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to `address`, while the request names the URL's host."""

    def __init__(self, target: Target, *, timeout: float, deadline: Deadline) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self.address = target.address
        self.deadline = deadline

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)
        self.deadline.attach(self.sock)


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """As PinnedHTTPConnection, with TLS verified against the URL's host name."""

    def __init__(self, target: Target, *, timeout: float, deadline: Deadline) -> None:
        self.tls = ssl.create_default_context()
        super().__init__(target.host, target.port, timeout=timeout, context=self.tls)
        self.address = target.address
        self.deadline = deadline

    def connect(self) -> None:
        raw = socket.create_connection((self.address, self.port), self.timeout)
        sock = self.tls.wrap_socket(raw, server_hostname=self.host, do_handshake_on_connect=False)
        self.deadline.attach(sock)  # before the handshake, which a receiver can trickle too
        sock.do_handshake()
        self.sock = sock


def post(*, url: str, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
    started = time.monotonic()
    total = attempt_seconds(timeout)
    try:
        target = resolve_target(url, timeout=timeout)
    except Refused as refused:
        retryable = refused.code == "webhook_url_unresolved"  # DNS may come back; a private address stays
        return Answer(None, _ms(started), error=refused.message, retryable=retryable)
    deadline = Deadline(max(0.0, total - (time.monotonic() - started)))
    connection_class = PinnedHTTPSConnection if target.scheme == "https" else PinnedHTTPConnection
    connection = connection_class(target, timeout=timeout, deadline=deadline)
    deadline.start()
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        excerpt = response.read(EXCERPT_BYTES).decode("utf-8", errors="replace")
        if deadline.expired:  # cut short, so what was parsed (an EOF ends the headers) is not an answer
            return Answer(None, _ms(started), error=_timed_out(timeout, total, deadline))
        return Answer(response.status, _ms(started), excerpt=excerpt, retry_after=response.getheader("Retry-After"))
    except TimeoutError:
        return Answer(None, _ms(started), error=_timed_out(timeout, total, deadline))
    except (OSError, http.client.HTTPException) as exc:
        if deadline.expired:  # the shut-down socket's error, whatever form it took
            return Answer(None, _ms(started), error=_timed_out(timeout, total, deadline))
        return Answer(None, _ms(started), error=repr(exc)[:500])
    finally:
        deadline.cancel()
        connection.close()


def _timed_out(timeout: float, total: float, deadline: Deadline) -> str:
    if deadline.expired:
        return f"timed out: the attempt took longer than {total:g} s in all"
    return f"timed out after {timeout:g} s"


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
