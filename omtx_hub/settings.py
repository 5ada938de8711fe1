"""One settings module, driven by the environment (DESIGN §8).

With no variables set the hub runs embedded: SQLite, local-memory cache,
local CPU executor. DATABASE_URL and REDIS_URL switch to PostgreSQL and Redis.
"""

import os
from pathlib import Path

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

from omtx_hub.env import env_bool, env_float, env_int, env_list, env_str

# Lets `admin.ModelAdmin[Batch]` and friends be subscripted at run time.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("OMTX_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

ENVIRONMENT = env_str("ENVIRONMENT", "development")
DEBUG = env_bool("DEBUG", ENVIRONMENT == "development")
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()

# The development key is deliberately recognisable: check omtx.E001 refuses it
# outside development.
DEV_SECRET_KEY = "dev-insecure-omtx-hub-key-change-me-0123456789abcdefghijklmnop"
SECRET_KEY = env_str("SECRET_KEY", DEV_SECRET_KEY)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# --- Security (issue 9) ---
# Production turns every transport protection on; each stays overridable by its own variable
# (docs/security.md), e.g. SECURE_SSL_REDIRECT=false where the proxy already redirects.
PRODUCTION = ENVIRONMENT == "production"
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", PRODUCTION)
# Load balancers probe over plain HTTP inside the network; a redirect would fail the probe.
SECURE_REDIRECT_EXEMPT = [r"^health(/.*)?$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600 if PRODUCTION else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", PRODUCTION)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", PRODUCTION)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", PRODUCTION)
# Networks (CIDR) of the reverse proxies in front of the hub. Django believes
# X-Forwarded-Proto from whoever sends it, so it is read only when the operator says a proxy
# that sets it stands in front (and the hub is reachable through that proxy alone).
OMTX_TRUSTED_PROXIES = env_list("OMTX_TRUSTED_PROXIES", [])
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if OMTX_TRUSTED_PROXIES else None
# Content-Security-Policy on every environment, so a page that breaks it breaks in
# development first. Scripts and styles come from the hub's own origin only; the API docs page
# relaxes styles for itself (omtx_hub/api_docs.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
# Browsers of other origins may call the API (bearer tokens, no cookies) when listed here;
# none by default.
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS", [])
CORS_URLS_REGEX = r"^/api/.*$"
CORS_ALLOW_CREDENTIALS = False
# A token's lifetime unless its creator chooses another, or explicitly none.
OMTX_TOKEN_LIFETIME_DAYS = env_int("OMTX_TOKEN_LIFETIME_DAYS", 90, minimum=1)

INSTALLED_APPS = [
    # First: its runserver serves the ASGI application, websockets included (issue 10).
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",
    "csp",
    "channels",
    "omtx_hub.apps.OmtxHubConfig",
    "accounts",
    "ratelimit",
    "monitoring",
    "batches",
    "django_prometheus",
]

MIDDLEWARE = [
    # Outermost, so the envelope and every log line of the request carry its id.
    "omtx_hub.request_id.RequestId",
    # Outermost, to see every answer under /api/, those of the middleware below included.
    "omtx_hub.middleware.ApiErrorEnvelope",
    "monitoring.middleware.RequestTiming",
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files from the image (collected at build time) without a separate web server;
    # after SecurityMiddleware, so they get its headers (HSTS), before everything that reads
    # a session, a user or a rate-limit bucket for them.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "omtx_hub.middleware.ApiInputGuard",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Blocked addresses, anonymous limits, suspicious answers, rate-limit headers (ratelimit/middleware.py).
    "ratelimit.middleware.RateLimitMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "omtx_hub.urls"
WSGI_APPLICATION = "omtx_hub.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL", "")
if DATABASE_URL:
    # Connections persist across requests (opening one cost 41 % of a status poll's time,
    # docs/performance.md) and are checked before reuse, so a restarted database costs one
    # failed check, not a failed request. Behind PgBouncer in transaction mode, set
    # DB_CONN_MAX_AGE=0 and let the pooler keep the connections (docs/configuration.md).
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL,
            conn_max_age=env_int("DB_CONN_MAX_AGE", 600, minimum=0),
            conn_health_checks=True,
        )
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "omtx_hub.sqlite3"),
            # The dispatcher and the web process write concurrently; wait for
            # the lock instead of failing with "database is locked".
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", "")
REDIS_POOL_SIZE = env_int("REDIS_POOL_SIZE", 50, minimum=1)
if REDIS_URL:
    # Short socket timeouts: a Redis that stops answering costs a request this long once,
    # then the backend backs off and reads go to the database (omtx_hub/cache_backend.py).
    _redis_timeout = env_float("REDIS_SOCKET_TIMEOUT", 0.25, minimum=0.001)
    CACHES = {
        "default": {
            "BACKEND": "omtx_hub.cache_backend.ResilientRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "omtx",
            "OPTIONS": {
                "CONNECTION_POOL_KWARGS": {"max_connections": REDIS_POOL_SIZE},
                "COMPRESSOR": "omtx_hub.cache_backend.LargeValueCompressor",
                "SOCKET_CONNECT_TIMEOUT": _redis_timeout,
                "SOCKET_TIMEOUT": _redis_timeout,
                # Off, so that the backend sees each failure, counts it and backs off; it
                # answers as an empty cache would, never with an exception.
                "IGNORE_EXCEPTIONS": False,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Caching (issue 8) ---
# docs/caching.md. Whether the batch endpoints read through the cache (off: every read from
# the database). Off by default without Redis: a local-memory cache is one process's, and the
# dispatcher's and background worker's changes could not reach the web process's entries.
OMTX_CACHE_READS = env_bool("OMTX_CACHE_READS", bool(REDIS_URL))
# A batch's status, and a results page of a batch still moving: their keys carry the
# batch's version, so this only bounds how old the time-derived parts (ETA, queue place) get.
OMTX_CACHE_STATUS_SECONDS = env_int("OMTX_CACHE_STATUS_SECONDS", 30, minimum=1)
# A results page of a finished batch.
OMTX_CACHE_RESULTS_SECONDS = env_int("OMTX_CACHE_RESULTS_SECONDS", 3600, minimum=1)
OMTX_CACHE_LIST_SECONDS = env_int("OMTX_CACHE_LIST_SECONDS", 10, minimum=1)
# After a failed Redis call, this process reads from the database without asking Redis.
OMTX_CACHE_BACKOFF_SECONDS = env_float("OMTX_CACHE_BACKOFF_SECONDS", 5.0, minimum=0.0)
# How long a request waits for another process building the same results page.
OMTX_CACHE_LOCK_WAIT_SECONDS = env_float("OMTX_CACHE_LOCK_WAIT_SECONDS", 2.0, minimum=0.0)
# The scheme and host clients reach the API at: `warm_cache` builds results pages (whose
# links are absolute) for it.
OMTX_PUBLIC_URL = env_str("OMTX_PUBLIC_URL", "http://localhost:8000")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "account"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Outside VAR_DIR in the image (STATIC_ROOT=/app/staticfiles): VAR_DIR is a volume there, which
# would hide what the build collected.
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
# WhiteNoise reads it at start (and warns when it is missing, as before a first collectstatic).
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
MEDIA_ROOT = VAR_DIR / "media"
MEDIA_URL = "media/"
# Hashed names (cached for a year, immutable) and gzip copies, written by collectstatic;
# `{% static %}` then needs its manifest, so only where collectstatic has run: production
# (the image collects at build time), or wherever OMTX_STATIC_MANIFEST says so.
OMTX_STATIC_MANIFEST = env_bool("OMTX_STATIC_MANIFEST", PRODUCTION)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if OMTX_STATIC_MANIFEST
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# DRF applies Django's body limit to JSON (and to a form's fields, not its files):
# 100,000 named ChEMBL ligands and a 1 MiB MSA are 10.7 MB, so raise it
# deliberately and reject larger bodies with 413 (docs/configuration.md).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("OMTX_MAX_REQUEST_BYTES", 32 * 1024 * 1024, minimum=1024)
# A multipart request (ligand file and fields) above this answers 413 before its
# body is read. 100,000 3D SDF records with hydrogens average 4.0 KB (at most
# 5.2 KB in the shared cMet set); 512 MiB is 5.4 KB a record.
OMTX_MAX_UPLOAD_BYTES = env_int("OMTX_MAX_UPLOAD_MB", 512, minimum=1) * 1024 * 1024
FILE_UPLOAD_HANDLERS = [
    "omtx_hub.uploads.CappedUploadHandler",  # first: it refuses before the others store
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
# Ligand files are parsed as streams, so nothing gains from holding one in
# memory: above Django's default 2.5 MiB an upload goes to a temporary file.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

REST_FRAMEWORK = {
    "DEFAULT_VERSIONING_CLASS": "rest_framework.versioning.NamespaceVersioning",
    "ALLOWED_VERSIONS": ["v3"],
    # Every API view sits in the v3 namespace; the default only tells `manage.py
    # spectacular` which version to document when it is not given --api-version.
    "DEFAULT_VERSION": "v3",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "EXCEPTION_HANDLER": "omtx_hub.api_errors.exception_handler",
    # Per-user tier and endpoint buckets, after authentication (ratelimit/throttle.py).
    "DEFAULT_THROTTLE_CLASSES": ["ratelimit.throttle.TierThrottle"],
    # `?format=` selects the export format, not a DRF renderer.
    "URL_FORMAT_OVERRIDE": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "OMTX Hub API",
    "DESCRIPTION": "Batch protein–ligand predictions: submit, track, rank, export.",
    "VERSION": "3.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # One component per choice set, named for what it is (batches/api/schemas.py).
    "ENUM_NAME_OVERRIDES": {
        "BatchStatusEnum": "batches.states.BatchStatus",
        "JobStatusEnum": "batches.states.JobStatus",
        "FailureReasonEnum": "batches.states.FailureReason",
        "ModelNameEnum": "batches.api.schemas.MODEL_NAMES",
        "ValueKindEnum": "batches.api.schemas.VALUE_KINDS",
    },
}

# Submission. A batch of more ligands than this answers 202 and is validated by the
# background worker (`manage.py background`) in a pool of this many processes (0: in the
# worker process itself).
OMTX_INLINE_VALIDATION_LIGANDS = env_int("OMTX_INLINE_VALIDATION_LIGANDS", 500, minimum=0)
# A dry run of more ligands answers 202 the same way; its report is kept this long.
OMTX_DRY_RUN_HOURS = env_int("OMTX_DRY_RUN_HOURS", 24, minimum=1)
OMTX_VALIDATION_WORKERS = env_int("OMTX_VALIDATION_WORKERS", os.cpu_count() or 1, minimum=0)

# Execution engine (DESIGN §5).
OMTX_EXECUTOR_WORKERS = env_int("OMTX_EXECUTOR_WORKERS", 2, minimum=0)
# Jobs in flight across all dispatchers (the global cap), and in one dispatcher.
OMTX_MAX_IN_FLIGHT = env_int("OMTX_MAX_IN_FLIGHT", 256, minimum=1)
OMTX_DISPATCHER_CAPACITY = env_int("OMTX_DISPATCHER_CAPACITY", OMTX_MAX_IN_FLIGHT, minimum=1)
# Renewed by each dispatcher's heartbeat every quarter lease; a dead
# dispatcher's jobs are recovered after this.
OMTX_LEASE_SECONDS = env_int("OMTX_LEASE_SECONDS", 60, minimum=2)
# First retry of a transient failure waits this long; each next one twice as long (≤ 600 s).
# For estimates only: A100-40GB on Modal, USD per GPU-second (docs/execution.md).
OMTX_GPU_PRICE_PER_SECOND = env_float("OMTX_GPU_PRICE_PER_SECOND", 0.000583, minimum=0.0)
OMTX_RETRY_BACKOFF_SECONDS = env_float("OMTX_RETRY_BACKOFF_SECONDS", 10.0, minimum=0.0)
OMTX_BOLTZ2_EXECUTOR = env_str("OMTX_BOLTZ2_EXECUTOR", "modal")
MODAL_TOKEN_ID = env_str("MODAL_TOKEN_ID", "")
MODAL_TOKEN_SECRET = env_str("MODAL_TOKEN_SECRET", "")
# The deployed Modal app and its class (deploy/boltz_modal_app.py; docs/execution.md).
OMTX_MODAL_APP = env_str("OMTX_MODAL_APP", "omtx-boltz2")
OMTX_MODAL_CLASS = env_str("OMTX_MODAL_CLASS", "Boltz2")
OMTX_MAX_LIGANDS_PER_BATCH = env_int("OMTX_MAX_LIGANDS_PER_BATCH", 100_000, minimum=1)
# Exports of more rows are built once in the background as files (batches/export_files.py).
OMTX_EXPORT_INLINE_ROWS = env_int("OMTX_EXPORT_INLINE_ROWS", 10_000, minimum=0)

# Seed variables that later layers read; parsed here so bad values fail at start.
GCP_PROJECT_ID = env_str("GCP_PROJECT_ID", "")
FIRESTORE_DATABASE = env_str("FIRESTORE_DATABASE", "(default)")
RATE_LIMIT_ENABLED = env_bool("RATE_LIMIT_ENABLED", True)
RATE_LIMIT_REDIS_URL = env_str("RATE_LIMIT_REDIS_URL", REDIS_URL)
# --- Rate limiting (issue 9) --- docs/rate-limiting.md
# Tier and endpoint limits are data (ratelimit.Tier, edited in the admin); these are the knobs
# around them. Empty RATE_LIMIT_REDIS_URL: buckets and blocks live in each process's memory.
RATE_LIMIT_KEY_PREFIX = env_str("RATE_LIMIT_KEY_PREFIX", "omtx:rl")
# Multiplies every request limit and suspicious-activity threshold (never quotas). The test
# suite runs at 1000 (conftest.py) so its thousands of requests are never limited.
RATE_LIMIT_SCALE = env_float("RATE_LIMIT_SCALE", 1.0, minimum=0.001)
RATE_LIMIT_QUOTAS_ENABLED = env_bool("RATE_LIMIT_QUOTAS_ENABLED", True)
# A limiter call waits at most this for Redis before the breaker counts a failure.
RATE_LIMIT_REDIS_TIMEOUT = env_float("RATE_LIMIT_REDIS_TIMEOUT", 0.25, minimum=0.01)
RATE_LIMIT_BREAKER_FAILURES = env_int("RATE_LIMIT_BREAKER_FAILURES", 3, minimum=1)
RATE_LIMIT_BREAKER_RESET_SECONDS = env_float("RATE_LIMIT_BREAKER_RESET_SECONDS", 5.0, minimum=0.1)
RATE_LIMIT_TIER_CACHE_SECONDS = env_int("RATE_LIMIT_TIER_CACHE_SECONDS", 30, minimum=0)
# How stale a process's copy of the blocked set (and of the allow-list) may be.
RATE_LIMIT_BLOCKLIST_REFRESH_SECONDS = env_float("RATE_LIMIT_BLOCKLIST_REFRESH_SECONDS", 2.0, minimum=0.0)
# Suspicious activity: this many of one kind of answer to one address within the window blocks it.
RATE_LIMIT_SUSPICIOUS_WINDOW_SECONDS = env_int("RATE_LIMIT_SUSPICIOUS_WINDOW_SECONDS", 300, minimum=1)
RATE_LIMIT_MAX_AUTH_FAILURES = env_int("RATE_LIMIT_MAX_AUTH_FAILURES", 20, minimum=1)
RATE_LIMIT_MAX_NOT_FOUND = env_int("RATE_LIMIT_MAX_NOT_FOUND", 100, minimum=1)
RATE_LIMIT_MAX_THROTTLED = env_int("RATE_LIMIT_MAX_THROTTLED", 60, minimum=1)
# A first block lasts this long, each repeat twice the one before, never more than the maximum.
RATE_LIMIT_BLOCK_SECONDS = env_int("RATE_LIMIT_BLOCK_SECONDS", 900, minimum=1)
RATE_LIMIT_BLOCK_MAX_SECONDS = env_int("RATE_LIMIT_BLOCK_MAX_SECONDS", 7 * 86400, minimum=1)
# django-ratelimit on the login form and token creation, per client address.
RATE_LIMIT_LOGIN_RATE = env_str("RATE_LIMIT_LOGIN_RATE", "10/m")
RATE_LIMIT_TOKEN_RATE = env_str("RATE_LIMIT_TOKEN_RATE", "20/h")
RATELIMIT_ENABLE = RATE_LIMIT_ENABLED
# A cache outage must not lock every user out of the login form; blocking still applies.
RATELIMIT_FAIL_OPEN = True
# OMTX_TRUSTED_PROXIES (Security, above) also names whose X-Forwarded-For is believed:
# empty, the client is REMOTE_ADDR (ratelimit/client_ip.py).
APM_ENABLED = env_bool("APM_ENABLED", True)
METRICS_EXPORT_INTERVAL = env_int("METRICS_EXPORT_INTERVAL", 60, minimum=1)

# --- Monitoring: health and alerts (issue 8) ---
# Each alert's firing and resolution is POSTed here as JSON when set (docs/monitoring.md);
# the monitor waits at most the timeout for it, so a dead receiver cannot stall evaluation.
OMTX_ALERT_WEBHOOK_URL = env_str("OMTX_ALERT_WEBHOOK_URL", "")
OMTX_ALERT_WEBHOOK_TIMEOUT = env_float("OMTX_ALERT_WEBHOOK_TIMEOUT", 3.0, minimum=0.1)
# Hysteresis: an open alert resolves after this many consecutive evaluations with its
# value at or under threshold × (1 − margin), so a value hovering at the line cannot flap.
OMTX_ALERT_RESOLVE_MARGIN = env_float("OMTX_ALERT_RESOLVE_MARGIN", 0.05, minimum=0.0)
OMTX_ALERT_RESOLVE_EVALUATIONS = env_int("OMTX_ALERT_RESOLVE_EVALUATIONS", 2, minimum=1)
# Request error rate and latency are read over this APM window.
OMTX_MONITORING_WINDOW_SECONDS = env_int("OMTX_MONITORING_WINDOW_SECONDS", 300, minimum=10)
# Failure rates count the batches active now or finished within this window.
OMTX_BATCH_HEALTH_WINDOW_SECONDS = env_int("OMTX_BATCH_HEALTH_WINDOW_SECONDS", 24 * 3600, minimum=60)
# Models whose executor must be able to run for /health/ready to answer 200
# (production with Modal: "ligand-profile,boltz2").
OMTX_READINESS_MODELS = env_list("OMTX_READINESS_MODELS", ["ligand-profile"])


# --- Observability (issue 8) ---
# docs/observability.md. Request and operation timing (APM_ENABLED above), slow requests and
# queries logged, OpenTelemetry spans, Prometheus at /metrics, JSON logs with request ids.
APM_SLOW_REQUEST_MS = env_float("APM_SLOW_REQUEST_MS", 1000.0, minimum=0.0)
APM_SLOW_QUERY_MS = env_float("APM_SLOW_QUERY_MS", 200.0, minimum=0.0)
OTEL_EXPORTER = env_str("OTEL_EXPORTER", "none")
if OTEL_EXPORTER not in ("none", "console", "otlp"):
    raise ImproperlyConfigured(f"OTEL_EXPORTER={OTEL_EXPORTER!r}: use none, console or otlp")
LOG_FORMAT = env_str("LOG_FORMAT", "plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r}: use plain or json")
# Scrapers send `Authorization: Bearer <METRICS_TOKEN>`; empty: staff sessions only.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
# Every process of one host writes its Prometheus values here and a scrape sums them: it must
# be set before prometheus_client is first imported (it chooses its storage then), hence in
# the environment, which the processes started from this one inherit.
PROMETHEUS_MULTIPROC_DIR = Path(os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(VAR_DIR / "prometheus")))
PROMETHEUS_MULTIPROC_DIR.mkdir(parents=True, exist_ok=True)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "omtx_hub.logging.RequestIdFilter"}},
    "formatters": {
        # A handler without the filter (another module's) prints "-" for the id, not an error.
        "plain": {
            "()": "logging.Formatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
            "defaults": {"request_id": "-"},
        },
        "json": {"()": "omtx_hub.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {},
}

# --- Security logger (issue 9) ---
# INFO whatever LOG_LEVEL says: security events are always recorded (through root's handlers).
LOGGING.setdefault("loggers", {})["omtx.security"] = {"level": "INFO", "propagate": True}  # type: ignore[index]

# --- Live status: websockets (issue 10) ---
# docs/live-status.md. daphne serves omtx_hub.asgi: HTTP through Django, websockets through
# channels. Under ASGI, DB_CONN_MAX_AGE > 0 leaks connections (Django ticket 33497): every
# database access of a consumer runs in database_sync_to_async, which closes the connection
# after each call when the age is 0 and reuses it otherwise; production runs the websocket
# process with DB_CONN_MAX_AGE=0 (docs/live-status.md).
ASGI_APPLICATION = "omtx_hub.asgi.application"
# Connections the Redis channel layer may open per process and event loop: redis-py refuses
# past its pool size (100 by default), and every websocket's receive holds one.
OMTX_LIVE_REDIS_CONNECTIONS = env_int("OMTX_LIVE_REDIS_CONNECTIONS", 2000, minimum=10)
# Seconds a channel-layer group membership lasts unrenewed (channels-redis's group_expiry).
OMTX_LIVE_GROUP_EXPIRY = env_int("OMTX_LIVE_GROUP_EXPIRY", 86400, minimum=60)
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "max_connections": OMTX_LIVE_REDIS_CONNECTIONS}],
                "prefix": "omtx:ws:",
                # Messages a slow socket may have waiting before the layer drops the newest
                # (the client sees the gap in `since` and asks for a snapshot).
                "capacity": 200,
                "expiry": 30,
                # A group member is dropped this long after it joined unless it joins again:
                # the relay renews its memberships every quarter of it (at most 10 min).
                "group_expiry": OMTX_LIVE_GROUP_EXPIRY,
            },
        }
    }
else:
    # One process's: the dispatcher's changes reach sockets through the consumers' own
    # version check instead (OMTX_LIVE_POLL_SECONDS).
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
# A batch's changes are sent at most once per this interval per process, coalesced.
OMTX_LIVE_COALESCE_MS = env_int("OMTX_LIVE_COALESCE_MS", 250, minimum=0)
# With the in-memory layer, each batch socket checks its batch's version this often.
OMTX_LIVE_POLL_SECONDS = env_float("OMTX_LIVE_POLL_SECONDS", 1.0, minimum=0.05)
# The monitoring socket's dashboard is computed at most once per interval per process.
OMTX_LIVE_DASHBOARD_SECONDS = env_float("OMTX_LIVE_DASHBOARD_SECONDS", 5.0, minimum=0.5)
# How long a broadcast waits for the channel layer before it is counted as failed.
OMTX_LIVE_SEND_TIMEOUT = env_float("OMTX_LIVE_SEND_TIMEOUT", 2.0, minimum=0.1)
# An open socket's credentials (token, session, user, permission) are checked again this often
# and before every requested snapshot; a socket whose credentials no longer hold is closed.
OMTX_LIVE_REAUTH_SECONDS = env_float("OMTX_LIVE_REAUTH_SECONDS", 60.0, minimum=1.0)
# A batch socket is sent at most one requested snapshot per this interval; requests in
# between are merged into one sent at its end.
OMTX_LIVE_SNAPSHOT_SECONDS = env_float("OMTX_LIVE_SNAPSHOT_SECONDS", 2.0, minimum=0.0)
# Bytes daphne may hold unsent for one websocket; past it the connection is dropped.
OMTX_LIVE_MAX_BUFFER_BYTES = env_int("OMTX_LIVE_MAX_BUFFER_BYTES", 4 * 1024 * 1024, minimum=65536)

# --- Webhooks (issue 10) ---
# docs/webhooks.md. Deliveries are sent by the background worker, never by the dispatcher.
# Whether a webhook URL may point at loopback, private, link-local or metadata addresses.
# On in development only, so `make run` and the tests can use a receiver on this machine.
OMTX_WEBHOOK_ALLOW_PRIVATE = env_bool("OMTX_WEBHOOK_ALLOW_PRIVATE", ENVIRONMENT == "development")
# Attempts per delivery before it is `failed` (5xx, timeouts and refused connections retry).
OMTX_WEBHOOK_MAX_ATTEMPTS = env_int("OMTX_WEBHOOK_MAX_ATTEMPTS", 8, minimum=1)
# Seconds to connect, and seconds for each read of the answer.
OMTX_WEBHOOK_TIMEOUT_SECONDS = env_float("OMTX_WEBHOOK_TIMEOUT_SECONDS", 5.0, minimum=0.1)
# The first retry's delay; each further one doubles it (with ±20 % jitter), up to the maximum.
OMTX_WEBHOOK_BACKOFF_SECONDS = env_float("OMTX_WEBHOOK_BACKOFF_SECONDS", 30.0, minimum=0.0)
OMTX_WEBHOOK_BACKOFF_MAX_SECONDS = env_float("OMTX_WEBHOOK_BACKOFF_MAX_SECONDS", 3600.0, minimum=0.0)
# Deliveries one background process sends at once: a slow receiver holds one of them.
OMTX_WEBHOOK_CONCURRENCY = env_int("OMTX_WEBHOOK_CONCURRENCY", 4, minimum=1)
# After a rotation the previous secret still signs deliveries (a second v1) for this long.
OMTX_WEBHOOK_SECRET_GRACE_SECONDS = env_int("OMTX_WEBHOOK_SECRET_GRACE_SECONDS", 24 * 3600, minimum=0)
# The account page shows the webhook secret's state through this tag library.
TEMPLATES[0]["OPTIONS"].setdefault("libraries", {})["webhooks"] = "batches.webhooks.template_tags"  # type: ignore[attr-defined]
# The delivery status enum's name in the OpenAPI schema (batches and jobs have a `status` too).
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]["WebhookDeliveryStatusEnum"] = "batches.webhooks.models.DeliveryStatus"  # type: ignore[index]
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]["WebhookEventEnum"] = "batches.webhooks.models.WebhookEvent"  # type: ignore[index]

# --- Deployment (issue 11) ---
# docs/deployment.md. Production refuses to start without its own key: the development key
# would sign sessions anyone can forge. Raised here, at import, so every process stops before
# serving (gunicorn's worker, daphne, each management command); `manage.py check` still
# reports omtx.E001 for a non-production environment running on the development key.
if PRODUCTION and not os.environ.get("SECRET_KEY"):
    raise ImproperlyConfigured(
        "SECRET_KEY is not set: ENVIRONMENT=production refuses to start with the development key (omtx.E001). "
        "Set SECRET_KEY to a long random value (docs/deployment.md, 'Secrets')."
    )
# The pod's own address (Kubernetes downward API, status.podIP): the kubelet's probes and
# Prometheus reach a pod by it, and send it as the Host header.
OMTX_POD_IP = env_str("OMTX_POD_IP", "")
if OMTX_POD_IP:
    ALLOWED_HOSTS = [*ALLOWED_HOSTS, OMTX_POD_IP]
# Prometheus scrapes each pod over plain HTTP inside the cluster, with its bearer token: a
# redirect to https would fail the scrape, as it would the health probes (exempted above).
SECURE_REDIRECT_EXEMPT = [*SECURE_REDIRECT_EXEMPT, r"^metrics$"]
# Besides the console (stderr, where the platform collects logs), a file, when set: appended to,
# reopened when logrotate moves it (WatchedFileHandler), in the LOG_FORMAT of the console.
LOG_FILE = env_str("LOG_FILE", "")
if LOG_FILE:
    LOGGING["handlers"]["file"] = {  # type: ignore[index]
        "class": "logging.handlers.WatchedFileHandler",
        "filename": LOG_FILE,
        "formatter": LOG_FORMAT,
        "filters": ["request_id"],
    }
    LOGGING["root"]["handlers"].append("file")  # type: ignore[index]

# --- Result store and artifacts (issue 11) ---
# docs/result-store.md. Where the results API reads job rows from: "database" (default) or
# "firestore" (GCP_PROJECT_ID and FIRESTORE_DATABASE above; check omtx.E201 refuses firestore
# without a project). The database stays the authority either way: the dispatcher copies
# results to Firestore after its commits, and the API reads Firestore only for what it can
# answer exactly as the database would.
OMTX_RESULT_STORE = env_str("OMTX_RESULT_STORE", "database")
if OMTX_RESULT_STORE not in ("database", "firestore"):
    raise ImproperlyConfigured(f"OMTX_RESULT_STORE={OMTX_RESULT_STORE!r}: use database or firestore")
# Collections are <prefix>_batches/{batch id} (the summary) and …/jobs/{job id} (one per job),
# so two hubs (or test runs) can share one Firestore database.
OMTX_FIRESTORE_PREFIX = env_str("OMTX_FIRESTORE_PREFIX", "omtx")
# Seconds one Firestore call (a read, a commit, the summary's read and write) may take, retries
# included, before the caller falls back to the database (a read) or counts the failure (a write).
OMTX_RESULT_STORE_TIMEOUT_SECONDS = env_float("OMTX_RESULT_STORE_TIMEOUT_SECONDS", 10.0, minimum=0.01)
# After a failed call this process leaves Firestore alone this long: the dispatcher skips its
# writes (sync_result_store repairs them) and the results API reads the database.
OMTX_RESULT_STORE_BACKOFF_SECONDS = env_float("OMTX_RESULT_STORE_BACKOFF_SECONDS", 30.0, minimum=0.0)
# Artifacts (structures, export files): the local filesystem under MEDIA_ROOT, or a Google
# Cloud Storage bucket when GS_BUCKET_NAME is set (django-storages; credentials from the
# environment's Application Default Credentials, or GOOGLE_APPLICATION_CREDENTIALS).
GS_BUCKET_NAME = env_str("GS_BUCKET_NAME", "")
# Downloads from the bucket redirect to a signed URL valid this long.
OMTX_SIGNED_URL_SECONDS = env_int("OMTX_SIGNED_URL_SECONDS", 900, minimum=1)
# On GKE with Workload Identity there is no private key to sign with: sign through the IAM
# signBlob API as this service account instead (roles/iam.serviceAccountTokenCreator).
GS_IAM_SIGN_BLOB = env_bool("GS_IAM_SIGN_BLOB", False)
GS_SA_EMAIL = env_str("GS_SA_EMAIL", "") or None
if GS_BUCKET_NAME:
    from datetime import timedelta
    from typing import Any, cast

    # cast: STORAGES above holds backends only (str → str); this entry has options too.
    cast(dict[str, Any], STORAGES)["default"] = {
        "BACKEND": "storages.backends.gcloud.GoogleCloudStorage",
        "OPTIONS": {
            "bucket_name": GS_BUCKET_NAME,
            "project_id": GCP_PROJECT_ID or None,
            "expiration": timedelta(seconds=OMTX_SIGNED_URL_SECONDS),
            # As the filesystem does: a second file of one name gets a new name, never
            # overwrites the first (two ligands of one batch may share a name).
            "file_overwrite": False,
            "iam_sign_blob": GS_IAM_SIGN_BLOB,
            "sa_email": GS_SA_EMAIL,
        },
    }

# --- Liveness of the loops (review finding 8) ---
# A file that `manage.py dispatch`, `background` and `monitor` touch at the start of every
# pass; the Kubernetes liveness probe (`python -m omtx_hub.heartbeat --max-age N`) restarts
# the container when it grows older than N seconds (docs/deployment.md). Unset: no file.
OMTX_HEARTBEAT_FILE = env_str("OMTX_HEARTBEAT_FILE", "")
