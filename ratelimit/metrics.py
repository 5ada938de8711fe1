"""The limiter's Prometheus counter (exposed at /metrics with the rest of the registry)."""

from prometheus_client import Counter

# scope: tier, endpoint, anonymous, blocked, login, quota.
REJECTIONS = Counter(
    "omtx_rate_limit_rejections_total", "Requests refused by the rate limiter, blocking or quotas.", ["scope"]
)
