"""Real HTTP receivers for the webhook tests: http.server in a thread, no mocks.

A receiver answers each request with the next of its `answers` (the last one repeats):
a status code, `(code, headers)`, or HANG — read the request, then never answer until the
test ends."""

import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HANG = "hang"
Answer = int | str | tuple[int, dict[str, str]]


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    path: str
    # Requests another receiver held open (hanging) when this one arrived.
    seen_hanging: int = 0


@dataclass
class Receiver:
    answers: list[Answer]
    requests: list[Received] = field(default_factory=list)
    hanging: int = 0
    connections: int = 0
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    watch: "Receiver | None" = None
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook?x=1"

    def next_answer(self) -> Answer:
        with self.lock:
            index = min(len(self.requests), len(self.answers) - 1)
            return self.answers[index]

    def close(self) -> None:
        self.release.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def start(answers: list[Answer], *, watch: Receiver | None = None) -> Receiver:
    receiver = Receiver(answers=answers, watch=watch)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            answer = receiver.next_answer()
            seen = receiver.watch.hanging if receiver.watch is not None else 0
            with receiver.lock:
                receiver.requests.append(Received(dict(self.headers.items()), body, self.path, seen))
            if answer == HANG:
                with receiver.lock:
                    receiver.hanging += 1
                receiver.release.wait(30)
                with receiver.lock:
                    receiver.hanging -= 1
                return
            code, headers = answer if isinstance(answer, tuple) else (int(answer), {})
            self.send_response(code)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(f"answered {code}".encode())

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        # Room for every concurrent sender's connection (the default backlog is 5).
        request_queue_size = 128

        def verify_request(self, request: Any, client_address: Any) -> bool:
            with receiver.lock:
                receiver.connections += 1
            return True

    receiver.server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=receiver.server.serve_forever, daemon=True).start()
    return receiver


def refused_url() -> str:
    """A URL nobody listens on: the port was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def wait_for(predicate: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.01)
