"""The background worker's webhook step (batches/background/loop.py).

Deliveries are POSTed by a small thread pool; the loop thread only claims and records,
so no thread but the loop touches the database and the step never waits on a receiver:
a receiver that hangs or trickles holds one of OMTX_WEBHOOK_CONCURRENCY threads for at
most the attempt's deadline (transport.attempt_seconds), while the other threads and
the loop's other steps (validation, exports) go on.
"""

import logging
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from batches.webhooks.deliveries import Claimed, deliveries_claim, delivery_record
from batches.webhooks.transport import Answer, post

log = logging.getLogger(__name__)


class Sender:
    def __init__(self, *, workers: int) -> None:
        self.workers = workers
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="webhook")
        self.in_flight: dict[Future[Answer], tuple[Claimed, datetime]] = {}

    def step(self) -> bool:
        """Record the attempts that finished, then claim as many deliveries as threads are
        free; whether anything happened."""
        recorded = self.collect()
        free = self.workers - len(self.in_flight)
        claimed = deliveries_claim(limit=free) if free > 0 else []
        for delivery in claimed:
            self.in_flight[self.pool.submit(send, delivery)] = (delivery, timezone.now())
        return bool(recorded or claimed)

    def collect(self) -> int:
        done = [future for future in self.in_flight if future.done()]
        for future in done:
            delivery, started_at = self.in_flight.pop(future)
            delivery_record(claimed=delivery, answer=_answer(future), started_at=started_at)
        return len(done)

    def drain(self) -> int:
        """Wait for every POST in flight and record it."""
        wait(list(self.in_flight))
        return self.collect()

    def shutdown(self) -> None:
        self.drain()
        self.pool.shutdown()


def send(delivery: Claimed) -> Answer:
    timeout = settings.OMTX_WEBHOOK_TIMEOUT_SECONDS
    return post(url=delivery.url, body=delivery.body, headers=delivery.headers, timeout=timeout)


def _answer(future: Future[Answer]) -> Answer:
    try:
        return future.result()
    except Exception as exc:  # a bug in the POST's code: logged, recorded, retried like an error
        log.exception("webhook POST raised")
        return Answer(None, 0, error=f"internal error: {exc!r}"[:500])


_sender: Sender | None = None


def step() -> bool:
    global _sender
    if _sender is None:
        _sender = Sender(workers=settings.OMTX_WEBHOOK_CONCURRENCY)
    return _sender.step()


def shutdown() -> None:
    global _sender
    if _sender is not None:
        _sender.shutdown()
        _sender = None
