# One image for every process of the hub (deploy/Procfile): the web process by default; run
# another by giving its command, e.g. `python manage.py dispatch` (deploy/compose.yaml,
# deploy/k8s/). docs/deployment.md builds, pushes and runs it.
FROM python:3.11-slim

# Production unless told otherwise: settings then refuse to start without SECRET_KEY.
# VAR_DIR holds what a process writes (Prometheus files, SQLite when no DATABASE_URL): a
# volume in Kubernetes, so the collected static files live outside it, in the image.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ENVIRONMENT=production \
    OMTX_VAR_DIR=/var/lib/omtx \
    STATIC_ROOT=/app/staticfiles

WORKDIR /app
# RDKit's drawing code links libXrender and libXext.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libxrender1 libxext6 \
    && rm -rf /var/lib/apt/lists/*

# Dependencies first, so a code change does not reinstall them: the pinned runtime set, its
# transitive dependencies held to the versions the tests ran with.
COPY requirements/base.txt requirements/base.txt
COPY deploy/constraints.txt deploy/constraints.txt
RUN pip install --no-cache-dir -r requirements/base.txt -c deploy/constraints.txt

COPY . .
# A numeric uid, so Kubernetes' runAsNonRoot can verify it. The build-only key exists for the
# settings import of collectstatic and is not kept in the image's environment.
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin omtx \
    && SECRET_KEY=collectstatic-at-build-time-only python manage.py collectstatic --noinput \
    && mkdir -p "$OMTX_VAR_DIR" \
    && chown -R omtx "$OMTX_VAR_DIR"
USER 10001

EXPOSE 8000 8001
# /health on the web process (the websockets process answers it too). Other processes have no
# HTTP server: compose and Kubernetes switch the check off for them.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["python", "deploy/healthcheck.py"]
# deploy/Procfile's web line (tests/test_manifests.py holds them equal).
CMD ["sh", "-c", "exec gunicorn --config python:omtx_hub.gunicorn_conf omtx_hub.wsgi:application --workers 2 --bind 0.0.0.0:${PORT:-8000}"]
