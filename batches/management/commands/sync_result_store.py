"""Rewrite batches' Firestore documents from the database (docs/result-store.md).

`sync_result_store <batch id>…` rewrites those batches; `--all-recent` the active ones and
those finished within `--hours`; `--orphans` deletes the documents of batches the database no
longer has (deleted batches). Every document is set whole from its row, so the command is
safe to repeat and to run beside the dispatcher.
"""

from datetime import timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q
from django.utils import timezone

from batches.models import Batch
from batches.result_store import enabled
from batches.result_store.hooks import FAILURES
from batches.result_store.writer import batch_sync, orphans_delete
from batches.selectors import batch_uuid
from batches.states import BATCH_ACTIVE


def recent_batches(*, hours: float) -> list[UUID]:
    since = timezone.now() - timedelta(hours=hours)
    recent = Q(status__in=BATCH_ACTIVE) | Q(finished_at__gte=since)
    return list(Batch.objects.filter(recent).order_by("-created_at").values_list("pk", flat=True))


class Command(BaseCommand):
    help = "Rewrite batches' result documents in Firestore from the database."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("batch_ids", nargs="*", help="batch ids to rewrite")
        parser.add_argument("--all-recent", action="store_true", help="active batches and those finished lately")
        parser.add_argument("--hours", type=float, default=24.0, help="with --all-recent: finished within (24)")
        parser.add_argument("--orphans", action="store_true", help="delete documents of batches no longer stored")

    def handle(self, *args: Any, **options: Any) -> None:
        if not enabled():
            raise CommandError("OMTX_RESULT_STORE is not firestore: there is no result store to sync.")
        ids = self._batch_ids(options)
        if not ids and not options["orphans"]:
            raise CommandError("Name batch ids, or give --all-recent or --orphans.")
        failed = [str(pk) for pk in ids if not self._sync(pk)]
        if options["orphans"]:
            removed = orphans_delete()
            self.stdout.write(f"orphans: {removed} batches' documents deleted")
        if failed:
            raise CommandError(f"{len(failed)} batches not synced: {', '.join(failed)}")
        self.stdout.write(self.style.SUCCESS(f"synced {len(ids)} batches to {settings.GCP_PROJECT_ID}"))

    def _batch_ids(self, options: dict[str, Any]) -> list[UUID]:
        ids = []
        for value in options["batch_ids"]:
            pk = batch_uuid(value)
            if pk is None:
                raise CommandError(f"{value!r} is not a batch id.")
            ids.append(pk)
        if options["all_recent"]:
            ids += [pk for pk in recent_batches(hours=options["hours"]) if pk not in ids]
        return ids

    def _sync(self, pk: UUID) -> bool:
        def progress(written: int) -> None:
            self.stdout.write(f"\rbatch {pk}: {written} documents written", ending="")
            self.stdout.flush()

        try:
            report = batch_sync(batch_id=pk, progress=progress)
        except FAILURES as exc:
            self.stderr.write(f"\nbatch {pk}: failed ({exc!r})")
            return False
        if report.batch_exists:
            self.stdout.write(f"\rbatch {pk}: {report.written} documents written, {report.deleted} stale deleted")
        else:
            self.stdout.write(f"batch {pk}: not in the database; {report.deleted} documents deleted")
        return True
