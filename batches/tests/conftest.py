"""Fixtures shared by the Modal tests: a fake `modal` package and configured credentials."""

import sys
from typing import Any

import pytest

from batches.tests import fake_modal
from batches.tests.fake_modal import FakeCloud


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch) -> FakeCloud:
    cloud = FakeCloud()
    module = fake_modal.build(cloud)
    monkeypatch.setitem(sys.modules, "modal", module)
    monkeypatch.setitem(sys.modules, "modal.exception", module.exception)  # type: ignore[attr-defined]
    return cloud


@pytest.fixture
def configured(settings: Any) -> None:
    settings.MODAL_TOKEN_ID = "ak-test"
    settings.MODAL_TOKEN_SECRET = "as-test"
