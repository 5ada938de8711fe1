"""Query parameters the views parse from text: instants and metric thresholds.

Each takes exactly what its schema says (schema_inputs.py) and no more. Python's own
parsers take much else: `datetime.fromisoformat` reads `20240101`, `2024-W01-1` and
naive times, `float` reads `1_000`, ` 5 ` and other scripts' digits. A schema-valid
value is never refused either: RFC 3339 allows year 0000, a leap second and an offset
that carries the instant past year 1 or 9999, which no `datetime` holds.
"""

import math
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from omtx_hub.errors import InvalidInput

# RFC 3339: a full-date, or a date-time with its offset (T and Z in either case).
INSTANT = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?(?:[Zz]|([+-])([0-9]{2}):([0-9]{2})))?"
)
# A JSON number: what a client serializing a double writes.
NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")

DAY = 86_400
# Year 0000 is a leap year like 0400, 146,097 days (one Gregorian cycle) earlier.
CYCLE_DAYS = 146_097
# Seconds since the start of ordinal day 0 (0000-12-31), the scale `instant` counts on.
FIRST = date.min.toordinal() * DAY
LAST = date.max.toordinal() * DAY + DAY - 1
EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)

THRESHOLD_OPS = {"min_": "gte", "max_": "lte"}


def instant(params: Any, name: str) -> datetime | None:
    """The UTC instant of an RFC 3339 date-time, or midnight UTC opening a full date;
    None when absent. One before year 1 or after 9999 in UTC is the earliest or latest
    datetime: as a bound it keeps everything or nothing, as it says."""
    value = params.get(name)
    if value is None:
        return None
    match = INSTANT.fullmatch(value)
    counted = _seconds(match) if match else None
    if counted is None:
        message = f"{name} must be an RFC 3339 date-time (2024-05-01T12:00:00Z) or a date (2024-05-01)."
        raise InvalidInput(message, code="invalid_date", details={"parameter": name})
    seconds, micro = counted
    if seconds < FIRST:
        return EARLIEST
    if seconds > LAST:
        return LATEST
    return EARLIEST + timedelta(seconds=seconds - FIRST, microseconds=micro)


def _seconds(match: re.Match[str]) -> tuple[int, int] | None:
    """(seconds since ordinal day 0, microseconds) in UTC, or None for an impossible one."""
    year, month, day, hour, minute, second, fraction, sign, off_hour, off_minute = match.groups()
    days = _ordinal(int(year), int(month), int(day))
    if days is None:
        return None
    if hour is None:
        return days * DAY, 0
    offset = (int(off_hour) * 60 + int(off_minute)) * (-1 if sign == "-" else 1) if sign else 0
    minutes = int(hour) * 60 + int(minute) - offset  # of the UTC day, may run into the next or last
    if (
        int(hour) > 23
        or int(minute) > 59
        or int(second) > 60
        or (sign and (int(off_hour) > 23 or int(off_minute) > 59))
    ):
        return None
    # A leap second is the last second of a UTC day, whatever offset it is written with.
    if int(second) == 60 and minutes % (24 * 60) != 24 * 60 - 1:
        return None
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    return days * DAY + minutes * 60 + int(second), micro


def _ordinal(year: int, month: int, day: int) -> int | None:
    try:
        return date(year or 400, month, day).toordinal() - (0 if year else CYCLE_DAYS)
    except ValueError:
        return None


def thresholds(params: Any) -> list[tuple[str, str, float]]:
    """(metric, lookup, bound) for each `min_<metric>` and `max_<metric>` given."""
    found = []
    for key, value in params.items():
        for prefix, op in THRESHOLD_OPS.items():
            if key.startswith(prefix):
                found.append((key.removeprefix(prefix), op, _finite(value, key)))
    return found


def _finite(value: str, name: str) -> float:
    # NaN compares differently on PostgreSQL (above every number) and SQLite (NULL): refused,
    # and so is a number past a double's range (1e999), which float() makes infinite.
    number = float(value) if NUMBER.fullmatch(value) else math.nan
    if not math.isfinite(number):
        message = f"{name} must be a finite number, written as in JSON (0.5, -2, 1e-3)."
        raise InvalidInput(message, code="invalid_threshold", details={"parameter": name})
    return number
