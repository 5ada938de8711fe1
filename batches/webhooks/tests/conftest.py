"""Webhook fixtures: receivers, a secret for the owner, a sender to drive by hand."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User

from batches.models import Batch
from batches.webhooks.keys import secret_rotate
from batches.webhooks.models import WebhookSecret
from batches.webhooks.sender import Sender
from batches.webhooks.tests import receivers
from batches.webhooks.tests.receivers import Answer, Receiver


@pytest.fixture(autouse=True)
def _webhook_settings(settings: Any) -> None:
    # Receivers listen on 127.0.0.1; tests of the address rule turn this off themselves.
    settings.OMTX_WEBHOOK_ALLOW_PRIVATE = True
    settings.OMTX_WEBHOOK_TIMEOUT_SECONDS = 2.0
    settings.OMTX_WEBHOOK_MAX_ATTEMPTS = 8


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    started: list[Receiver] = []

    def start(*answers: Answer, watch: Receiver | None = None) -> Receiver:
        started.append(receivers.start(list(answers) or [200], watch=watch))
        return started[-1]

    yield start
    for one in started:
        one.close()


@pytest.fixture
def owner_secret(owner: User) -> WebhookSecret:
    return secret_rotate(user=owner)


@pytest.fixture
def hooked_batch(make_batch: Callable[..., Batch], owner_secret: WebhookSecret) -> Callable[..., Batch]:
    """make_batch with a webhook URL (the owner has a secret)."""

    def make(url: str, ligands: list[Any] | None = None, **fields: Any) -> Batch:
        return make_batch(ligands, webhook_url=url, **fields)

    return make


@pytest.fixture
def sender() -> Iterator[Sender]:
    one = Sender(workers=2)
    yield one
    one.shutdown()


def send_all(sender: Sender) -> int:
    """One claim and every POST it started, recorded; how many were recorded."""
    sender.step()
    return sender.drain()
