"""A scratch PostgreSQL database beside DATABASE_URL's, made for one benchmark and dropped after."""

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def scratch_database(name: str) -> Iterator[str]:
    """Create `name` on DATABASE_URL's server (dropping a leftover first), yield its URL, drop it."""
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres"):
        sys.exit("set DATABASE_URL to a PostgreSQL server (this benchmark measures PostgreSQL)")
    import psycopg

    server = base.rsplit("/", 1)[0]
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield f"{server}/{name}"
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def setup_django(url: str, **env: str) -> None:
    """Django on `url` as deployed (DEBUG off: with it on, Django keeps and formats every
    query), with `env` set first; a fresh var directory unless one is given."""
    import tempfile

    os.environ.update(DATABASE_URL=url, **env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omtx_hub.settings")
    os.environ.setdefault("OMTX_VAR_DIR", tempfile.mkdtemp(prefix="omtx-bench-"))
    os.environ.setdefault("DEBUG", "false")
    import django

    django.setup()
