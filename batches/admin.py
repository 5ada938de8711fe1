"""The operator console. Actions call the same services as the API."""

from typing import Any, cast

from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.functional import cached_property

from batches.changes import batches_changed_on_commit
from batches.models import Batch, ExportFile, Job, Target
from batches.selectors import batch_progress
from batches.services.lifecycle import batch_cancel, batch_delete, batch_retry_failed, batch_set_priority
from omtx_hub.errors import DomainError


class CappedCountPaginator(Paginator[Job]):
    """COUNT(*) over millions of jobs is slow; count at most `cap` + 1 rows."""

    cap = 10_000

    @cached_property
    def count(self) -> int:
        jobs = cast(QuerySet[Job], self.object_list)
        return jobs[: self.cap + 1].count()


@admin.register(Batch)
class BatchAdmin(admin.ModelAdmin[Batch]):
    list_display = [
        "name",
        "owner",
        "model",
        "status",
        "n_total",
        "n_succeeded",
        "n_failed",
        "n_cancelled",
        "priority",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "model", "created_at"]
    list_select_related = ["owner"]
    search_fields = ["name", "id", "owner__username"]
    readonly_fields = [f.name for f in Batch._meta.fields if f.name not in ("name", "priority")]
    date_hierarchy = "created_at"
    actions = ["cancel", "retry_failed", "delete_batches"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # batches come from the API, which validates every ligand

    def has_delete_permission(self, request: HttpRequest, obj: Batch | None = None) -> bool:
        # Django's delete (view and delete_selected) would skip batch_delete: the artifact
        # files and the cache hook. The "Delete" action below calls the service instead.
        return False

    def has_batch_delete_permission(self, request: HttpRequest) -> bool:
        """The "Delete" action's own check, as has_delete_permission is False by design."""
        return request.user.has_perm("batches.delete_batch")

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Batch | None = None,
    ) -> HttpResponse:
        """The change page shows the batch's progress from its counters (O(1), as the status
        API), refreshed by static/admin-batch.js from that API, and links to the batch page."""
        if obj is not None:
            context["batch_progress"] = batch_progress(obj)
            context["batch_page_url"] = reverse("batch-page", args=[obj.pk])
            context["batch_status_url"] = reverse("v3:batch-status", kwargs={"batch_id": obj.pk})
        return super().render_change_form(request, context, add, change, form_url, obj)

    def save_model(self, request: HttpRequest, obj: Batch, form: Any, change: bool) -> None:
        # Only name and priority are editable; priority must reach the queued jobs too.
        Batch.objects.filter(pk=obj.pk).update(name=obj.name)
        batches_changed_on_commit(batch_ids=[obj.pk], owner_ids=[obj.owner_id])  # lists show the name
        if "priority" in form.changed_data:
            batch_set_priority(batch=obj, priority=obj.priority)

    # Actions name their permission: without one, anyone who may view the list may run them.
    @admin.action(description="Cancel selected batches", permissions=["change"])
    def cancel(self, request: HttpRequest, queryset: QuerySet[Batch]) -> None:
        self._each(request, queryset, lambda b: batch_cancel(batch=b), "cancelled")

    @admin.action(description="Retry failed jobs of selected batches", permissions=["change"])
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[Batch]) -> None:
        self._each(request, queryset, lambda b: batch_retry_failed(batch=b), "re-queued")

    @admin.action(description="Delete selected batches (finished ones, with their files)", permissions=["batch_delete"])
    def delete_batches(self, request: HttpRequest, queryset: QuerySet[Batch]) -> None:
        self._each(request, queryset, lambda b: batch_delete(batch=b), "deleted")

    def _each(self, request: HttpRequest, queryset: QuerySet[Batch], action: object, verb: str) -> None:
        done, refused = 0, []
        for batch in queryset:
            try:
                action(batch)  # type: ignore[operator]
                done += 1
            except DomainError as exc:
                refused.append(f"{batch.name}: {exc.message}")
        self.message_user(request, f"{done} batch(es) {verb}.")
        for line in refused:
            self.message_user(request, line, level=messages.WARNING)


@admin.register(Job)
class JobAdmin(admin.ModelAdmin[Job]):
    list_display = [
        "name",
        "batch",
        "index",
        "status",
        "attempts",
        "failure_reason",
        "qed",
        "affinity_probability_binary",
        "finished_at",
    ]
    list_filter = ["status", "failure_reason"]
    list_select_related = ["batch"]
    search_fields = ["name", "inchikey", "=id", "=batch__id"]
    raw_id_fields = ["batch", "owner"]
    readonly_fields = [f.name for f in Job._meta.fields]
    paginator = CappedCountPaginator
    show_full_result_count = False
    list_per_page = 100

    def has_delete_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        # A job's row carries its batch's counts (n_total, n_succeeded…): removing it alone
        # would leave them wrong. Jobs go with their batch (BatchAdmin's "Delete" action).
        return False


@admin.register(Target)
class TargetAdmin(admin.ModelAdmin[Target]):
    list_display = ["sequence_sha256", "length", "created_at"]
    search_fields = ["sequence_sha256", "sequence"]
    readonly_fields = ["sequence_sha256", "length", "created_at"]


@admin.register(ExportFile)
class ExportFileAdmin(admin.ModelAdmin[ExportFile]):
    """Read-only: the background worker builds exports; a failed one is retried by asking again."""

    list_display = ["id", "batch", "batch_version", "format", "status", "rows_written", "rows_total", "size"]
    list_filter = ["status", "format"]
    list_select_related = ["batch"]
    search_fields = ["=id", "=batch__id"]
    readonly_fields = [f.name for f in ExportFile._meta.fields]

    def has_delete_permission(self, request: HttpRequest, obj: ExportFile | None = None) -> bool:
        # The row is how the sweep (export_files_sweep) finds the files: deleting it orphans them.
        return False


from batches.webhooks import admin as webhooks_admin  # noqa: E402, F401 (registers the webhook admin)
