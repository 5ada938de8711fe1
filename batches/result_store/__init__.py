"""The Firestore result store (docs/result-store.md): a copy of each batch's job rows that the
dispatcher writes after its commits and the results API reads when it can answer from it
exactly as the database would. The database stays the authority: a failed write is logged,
counted and repaired by `manage.py sync_result_store`, never a failed job."""

from django.conf import settings


def enabled() -> bool:
    return bool(settings.OMTX_RESULT_STORE == "firestore")
