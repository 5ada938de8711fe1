"""The upload cap (OMTX_MAX_UPLOAD_MB): refuse an oversized file before reading it.

DATA_UPLOAD_MAX_MEMORY_SIZE does not count files, and Django's multipart parser
streams a whole file to a temporary file before any view runs, so a cap checked
in the view comes after the cost. This handler runs first in FILE_UPLOAD_HANDLERS:

- `handle_raw_input` sees the declared Content-Length before the parser reads a
  byte, and refuses the request there;
- `receive_data_chunk` counts the file bytes as they stream, for a body longer
  than its Content-Length says. Under WSGI Django never reads past the declared
  length (and reads nothing without one), but an ASGI server hands Django the
  whole body whatever the header claims.
"""

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest

from omtx_hub.errors import TooLarge

MB = 1024 * 1024


class UploadTooLarge(TooLarge, RequestDataTooBig):
    """413 in the API envelope. Also a RequestDataTooBig, so a plain Django view
    (the account pages' forms) answers 400 Bad Request instead of 500."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"The upload exceeds the {limit // MB} MB limit (OMTX_MAX_UPLOAD_MB); "
            "split the ligands into several batches.",
            details={"max_upload_bytes": limit},
        )


class CappedUploadHandler(FileUploadHandler):
    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        # Read per request, so a test's settings override applies.
        self.limit: int = settings.OMTX_MAX_UPLOAD_BYTES
        self.received = 0

    def handle_raw_input(
        self,
        input_data: Any,
        META: dict[str, Any],
        content_length: int,
        boundary: Any,
        encoding: str | None = None,
    ) -> None:
        if content_length > self.limit:
            raise UploadTooLarge(self.limit)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        # All files of the request together: a cap per file would let one
        # request carry many files of just under the limit.
        self.received += len(raw_data)
        if self.received > self.limit:
            raise UploadTooLarge(self.limit)
        return raw_data

    def file_complete(self, file_size: int) -> UploadedFile | None:
        return None  # the next handlers store the file
