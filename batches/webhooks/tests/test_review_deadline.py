"""Adversarial review (issues 10/11): an attempt must have a total deadline.

OMTX_WEBHOOK_TIMEOUT_SECONDS bounds each socket operation, not the attempt: a receiver that
answers a byte at a time, each within the timeout, holds a sender thread for as long as it
likes (http.client reads up to 100 header lines of 64 KiB). With OMTX_WEBHOOK_CONCURRENCY (4)
such receivers every user's deliveries stop, and the claim's lease (120 s) runs out while the
first attempt is still sending, so a second worker POSTs the same delivery concurrently."""

import socket
import threading
import time

from batches.webhooks.transport import post


def _trickling_receiver(stop: threading.Event) -> int:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def serve() -> None:
        conn, _ = server.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        # One header byte every 0.1 s: each read answers well within the timeout.
        while not stop.is_set():
            try:
                conn.sendall(b"X")
            except OSError:
                break
            time.sleep(0.1)
        conn.close()
        server.close()

    threading.Thread(target=serve, daemon=True).start()
    return int(server.getsockname()[1])


def test_a_trickling_receiver_cannot_hold_an_attempt_past_its_timeout(settings):
    settings.OMTX_WEBHOOK_ALLOW_PRIVATE = True
    stop = threading.Event()
    port = _trickling_receiver(stop)
    timeout = 0.5
    result: dict[str, float] = {}

    def attempt() -> None:
        started = time.monotonic()
        post(url=f"http://127.0.0.1:{port}/hook", body=b"{}", headers={}, timeout=timeout)
        result["seconds"] = time.monotonic() - started

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    # Generous: a connect and a read each within the timeout, several times over.
    worker.join(timeout * 10)
    stop.set()
    worker.join(5)
    assert "seconds" in result and result["seconds"] < timeout * 10, (
        "the attempt was still reading after 10x OMTX_WEBHOOK_TIMEOUT_SECONDS"
    )
