"""The predecessor's `configuration`: its scheduling keys mapped onto a batch's
policy (docs/api.md, "The predecessor's clients"), with a warning wherever a
value is not applied as given. Every other key is a model parameter."""

import math
from typing import Any

from batches.registry import ModelSpec
from batches.services.submission import MAX_ATTEMPTS, MAX_IN_FLIGHT, MIN_TIMEOUT_SECONDS
from omtx_hub.errors import InvalidInput

LEGACY_POLICY_KEYS = (
    "priority",
    "max_concurrent_jobs",
    "retry_failed_jobs",
    "max_retry_attempts",
    "timeout_per_job",
    "scheduling_strategy",
)
LEGACY_PRIORITY = {"low": -5, "normal": 0, "high": 5}
MAX_RETRIES = MAX_ATTEMPTS - 1
SCHEDULING_NOTE = "the hub schedules fairly across users, then by batch priority, then age"


def legacy_policy(config: dict[str, Any], spec: ModelSpec) -> tuple[dict[str, Any], list[str]]:
    """Take the scheduling keys out of `config` (left with model parameters):
    the batch policy they ask for, and warnings for what is not applied as
    given. A key set to null is not given."""
    given = {key: config.pop(key) for key in LEGACY_POLICY_KEYS if key in config}
    given = {key: value for key, value in given.items() if value is not None}
    policy: dict[str, Any] = {}
    warnings: list[str] = []
    if "priority" in given:
        policy["priority"] = _legacy_priority(given["priority"])
    if "max_concurrent_jobs" in given:
        policy["max_in_flight"] = _whole(
            given["max_concurrent_jobs"], "max_concurrent_jobs", minimum=1, maximum=MAX_IN_FLIGHT
        )
    attempts = _legacy_attempts(given.get("retry_failed_jobs"), given.get("max_retry_attempts"), warnings)
    if attempts is not None:
        policy["max_attempts"] = attempts
    if "timeout_per_job" in given:
        policy["timeout_seconds"] = _legacy_timeout(given["timeout_per_job"], spec, warnings)
    if "scheduling_strategy" in given:
        strategy = given["scheduling_strategy"]
        if not isinstance(strategy, str):
            raise _invalid("scheduling_strategy", strategy, "must be a string")
        warnings.append(f"scheduling_strategy {strategy[:50]!r} is recorded, not applied: {SCHEDULING_NOTE}.")
    return policy, warnings


def _legacy_priority(value: Any) -> int:
    if not isinstance(value, str) or value.strip().lower() not in LEGACY_PRIORITY:
        raise _invalid("priority", value, f"must be one of {list(LEGACY_PRIORITY)}", allowed=list(LEGACY_PRIORITY))
    return LEGACY_PRIORITY[value.strip().lower()]


def _legacy_attempts(retry: Any, retries: Any, warnings: list[str]) -> int | None:
    """Attempts per job: `retry_failed_jobs: false` means one; otherwise
    `max_retry_attempts` n retries mean n + 1 attempts, at most MAX_ATTEMPTS."""
    if retry is not None and not isinstance(retry, bool):
        raise _invalid("retry_failed_jobs", retry, "must be true or false")
    count = None if retries is None else _whole(retries, "max_retry_attempts", minimum=0)
    if retry is False:
        if count:
            warnings.append("max_retry_attempts is ignored: retry_failed_jobs is false, so each job runs once.")
        return 1
    if count is None:
        return None
    if count > MAX_RETRIES:
        warnings.append(f"max_retry_attempts {count} is above the hub's {MAX_RETRIES}; {MAX_RETRIES} are used.")
    return min(count, MAX_RETRIES) + 1


def _legacy_timeout(value: Any, spec: ModelSpec, warnings: list[str]) -> int:
    """Seconds per attempt (rounded up); above the model's own timeout, the model's."""
    number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if number is None or not math.isfinite(number) or number < MIN_TIMEOUT_SECONDS:
        raise _invalid("timeout_per_job", value, f"must be a number of seconds, at least {MIN_TIMEOUT_SECONDS}")
    seconds = math.ceil(number)
    if seconds > spec.timeout_seconds:
        warnings.append(
            f"timeout_per_job {seconds} s is above {spec.name}'s {spec.timeout_seconds} s; "
            f"{spec.timeout_seconds} s is used."
        )
    return min(seconds, spec.timeout_seconds)


def _whole(value: Any, key: str, *, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _invalid(key, value, f"must be a whole number, at least {minimum}")
    if maximum is not None and value > maximum:
        raise _invalid(key, value, f"must be a whole number, at most {maximum}")
    return value


def _invalid(key: str, value: Any, problem: str, **details: Any) -> InvalidInput:
    return InvalidInput(
        f"configuration.{key} {problem}.",
        code="invalid_configuration",
        details={"key": f"configuration.{key}", "value": value, **details},
    )
