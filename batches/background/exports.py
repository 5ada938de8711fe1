"""The background step that builds large exports, one slice per call (batches/export_files.py)."""

import logging
from datetime import datetime

from django.utils import timezone

from batches.export_files import export_attempt_failed, export_build_step, export_claim, export_files_sweep

log = logging.getLogger(__name__)


def build_exports(now: datetime | None = None) -> bool:
    """Sweep a few stale export files, then write one slice of one export (or assemble it);
    whether there was work."""
    now = now or timezone.now()
    swept = export_files_sweep(now=now)
    export = export_claim(now=now)
    if export is None:
        return swept > 0
    try:
        export_build_step(export=export, now=now)
    except Exception as exc:
        # Retried up to MAX_ATTEMPTS, then `failed` with this message: never a partial file.
        log.exception("export %s failed a step", export.pk)
        export_attempt_failed(export=export, message=f"{type(exc).__name__}: {exc}", now=now)
    return True
