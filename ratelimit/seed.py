"""The seed's tiers: default 60 requests/min, premium 120, enterprise 300, and its endpoint
limits (submit 10/min, status 180/min, results 60/min). Bursts, quotas and weights are this
hub's choice (docs/rate-limiting.md). Migration 0002 writes them; after that they are data,
edited in the admin. `DEFAULT` stands in only if the tier table is empty."""

from typing import Any

ENDPOINTS = {"submit": 10, "status": 180, "results": 60}
TIERS: list[dict[str, Any]] = [
    {
        "name": "default",
        "requests_per_minute": 60,
        "burst": 20,
        "max_ligands_per_batch": 100_000,
        "max_active_batches": 10,
        "max_queued_jobs": 200_000,
        "gpu_seconds_per_month": 36_000,
        "fair_share_weight": 1.0,
        "is_default": True,
    },
    {
        "name": "premium",
        "requests_per_minute": 120,
        "burst": 40,
        "max_ligands_per_batch": 100_000,
        "max_active_batches": 25,
        "max_queued_jobs": 1_000_000,
        "gpu_seconds_per_month": 360_000,
        "fair_share_weight": 2.0,
        "is_default": False,
    },
    {
        "name": "enterprise",
        "requests_per_minute": 300,
        "burst": 100,
        "max_ligands_per_batch": 100_000,
        "max_active_batches": 100,
        "max_queued_jobs": 5_000_000,
        "gpu_seconds_per_month": 3_600_000,
        "fair_share_weight": 4.0,
        "is_default": False,
    },
]

DEFAULT: dict[str, Any] = {**TIERS[0], "endpoint_limits": dict(ENDPOINTS)}
