"""Log records as one JSON object per line (LOG_FORMAT=json), and the request id on every
record emitted while a request is served (omtx_hub/request_id.py), whatever the format."""

import json
import logging
from datetime import UTC, datetime
from typing import Any

from omtx_hub import request_id

# LogRecord's own attributes: whatever else a record carries came from `extra=` and is kept.
RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "request_id"}


class RequestIdFilter(logging.Filter):
    """Stamps `record.request_id` ("-" outside a request); never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.current() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """time (UTC, ISO 8601), level (and severity, its copy for Cloud Logging), logger, message,
    request_id, exc_info as text, and any `extra=` fields; values JSON cannot hold are written
    with their repr."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            # Google Cloud Logging reads a JSON line's level from this field; without it, every
            # line on stderr (the console handler's stream) is filed as ERROR.
            "severity": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": request_id.current(),
        }
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        entry.update({key: value for key, value in record.__dict__.items() if key not in RESERVED})
        return json.dumps(entry, default=repr)
