"""Adversarial review (issue 11): a Firestore that does not answer must not hold the dispatcher.

The dispatcher writes a batch's documents after each ingest commit (result_store/hooks.py),
on its own thread. Job documents are committed with `timeout=TIMEOUT` (10 s), but the batch
summary goes through a Firestore transaction (`writer._store_summary`) whose read and begin
have no timeout: the client's default retry runs 60 s against an unreachable Firestore, then
the decorator's rollback raises ValueError ("The transaction has no transaction ID"), which
hooks.FAILURES does not catch. Measured by hand: write_quietly(batch, []) took over 60 s per
batch and ended in that ValueError. Here the Firestore address accepts connections and never
answers (a black hole, as a network partition looks)."""

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from batches.result_store import client, writer


@pytest.fixture
def silent_firestore(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            held.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{server.getsockname()[1]}")
    settings.OMTX_RESULT_STORE = "firestore"
    settings.GCP_PROJECT_ID = "omtx-review-silent"
    settings.FIRESTORE_DATABASE = "(default)"
    client._client.cache_clear()
    yield
    client._client.cache_clear()
    server.close()
    for conn in held:
        conn.close()


def test_the_summary_write_gives_up_within_the_store_timeout(silent_firestore: None) -> None:
    summary = {"batch_id": "b", "version": 1}
    ended = threading.Event()

    def write() -> None:
        with contextlib.suppress(Exception):
            writer._store_summary(client.client().transaction(), client.batch_ref("b"), summary)
        ended.set()

    threading.Thread(target=write, daemon=True).start()
    # The store's own bound (TIMEOUT, 10 s) and some slack; the transaction retries for 60 s.
    assert ended.wait(client.TIMEOUT * 2), "the summary write held its thread past twice the store's timeout"


def test_the_results_api_s_store_check_gives_up_within_the_store_timeout(silent_firestore: None) -> None:
    """Every results page with the store on first counts the batch's succeeded documents
    (reader._succeeded_documents); a web worker waits on it."""
    import uuid

    from batches.models import Batch
    from batches.result_store import reader

    batch = Batch(pk=uuid.uuid4())
    ended = threading.Event()

    def count() -> None:
        with contextlib.suppress(Exception):
            reader._read(lambda: reader._succeeded_documents(batch))
        ended.set()

    threading.Thread(target=count, daemon=True).start()
    assert ended.wait(client.TIMEOUT * 2), "the results API's count held its worker past twice the store's timeout"
