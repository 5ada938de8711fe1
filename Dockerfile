# Production image: the web process by default; run `python manage.py dispatch` for the dispatcher.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 OMTX_VAR_DIR=/var/lib/omtx
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends libxrender1 libxext6 && rm -rf /var/lib/apt/lists/*
COPY requirements/ requirements/
RUN pip install --no-cache-dir -r requirements/base.txt
COPY . .
RUN useradd --system omtx && mkdir -p $OMTX_VAR_DIR && chown omtx $OMTX_VAR_DIR \
    && ENVIRONMENT=development python manage.py collectstatic --noinput
USER omtx
EXPOSE 8000
CMD ["gunicorn", "--config", "python:omtx_hub.gunicorn_conf", "omtx_hub.wsgi:application", "--workers", "2", "--bind", "0.0.0.0:8000"]
