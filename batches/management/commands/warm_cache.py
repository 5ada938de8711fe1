"""Fill the cache with the status and first results page of active and recent batches.

Each page is requested through its own view (throttles off), as its owner, so what is stored is exactly
what a client's request would store (same code, same keys): a page already current is a hit
and left alone, which makes the command safe to repeat. Results pages carry absolute links,
so they are built for the scheme and host clients use (--base-url, OMTX_PUBLIC_URL).
"""

from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q, QuerySet
from django.urls import resolve, reverse
from django.utils import timezone
from rest_framework.test import APIRequestFactory, force_authenticate

from batches.models import Batch
from batches.states import BATCH_ACTIVE, BatchStatus
from omtx_hub.cache import process_counts

PAGES = ("v3:batch-status", "v3:batch-results")


def batches_to_warm(*, hours: float) -> QuerySet[Batch]:
    """Active (or validating) batches, and those finished within `hours`, newest first."""
    since = timezone.now() - timedelta(hours=hours)
    live = Q(status__in=[*BATCH_ACTIVE, BatchStatus.VALIDATING]) | Q(finished_at__gte=since)
    return Batch.objects.filter(live).select_related("owner").order_by("-created_at")


class Command(BaseCommand):
    help = "Cache the status and first results page of active and recently finished batches."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--hours", type=float, default=24.0, help="finished within this many hours (24)")
        parser.add_argument("--base-url", default=settings.OMTX_PUBLIC_URL, help="scheme and host clients use")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.OMTX_CACHE_READS:
            raise CommandError("OMTX_CACHE_READS is off: the batch reads do not use the cache.")
        base = urlsplit(options["base_url"])
        if base.scheme not in ("http", "https") or not base.netloc:
            raise CommandError(f"--base-url {options['base_url']!r} is not an http(s) URL.")
        factory = APIRequestFactory()
        batches = list(batches_to_warm(hours=options["hours"]))
        before = process_counts()
        failed: list[str] = []
        for done, batch in enumerate(batches, start=1):
            for name in PAGES:
                code = self._fetch(factory, base.netloc, base.scheme == "https", name, batch)
                if code != 200:
                    failed.append(f"{batch.pk} {name}: HTTP {code}")
            self.stdout.write(f"\rwarming: {done}/{len(batches)} batches", ending="")
            self.stdout.flush()
        after = process_counts()
        built = after["miss"] - before["miss"]
        current = after["hit"] - before["hit"]
        self.stdout.write(
            f"\nwarmed {len(batches)} batches (active, or finished within {options['hours']:g} h) for "
            f"{base.scheme}://{base.netloc}: {built} entries stored, {current} already current, "
            f"{after['error'] - before['error']} not reachable in the cache, {len(failed)} pages failed"
        )
        for line in failed:
            self.stderr.write(line)

    def _fetch(self, factory: APIRequestFactory, host: str, secure: bool, name: str, batch: Batch) -> int:
        path = reverse(name, kwargs={"batch_id": batch.pk})
        request = factory.get(path, HTTP_HOST=host, secure=secure)
        force_authenticate(request, user=batch.owner)
        match = resolve(path)
        request.resolver_match = match
        # Without the throttles: warming is the operator's work, not the owner's requests,
        # and must not spend the owner's rate-limit tokens.
        view = match.func.view_class.as_view(throttle_classes=())  # type: ignore[attr-defined]
        response = view(request, *match.args, **match.kwargs)
        return int(response.status_code)
