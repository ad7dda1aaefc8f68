"""The distributed backend's servers: PostgreSQL for the metadata database, Redis for Celery's broker.

Both run outside the harness (on CI and development machines: PostgreSQL on 127.0.0.1:5432 with trust
auth, Redis on 127.0.0.1:6379). Each distributed Airflow gets a database of its own, created here and
dropped when it stops, and a Redis key prefix of its own, so runs on one machine never see each other.
"""

from __future__ import annotations

import socket
from contextlib import closing

POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER = "127.0.0.1", 5432, "postgres"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
HOW_TO_START = {
    "PostgreSQL": "start it with trust auth for local connections, e.g. `pg_ctlcluster 15 main start`",
    "Redis": "start it, e.g. `redis-server --daemonize yes`",
}


class ServerMissing(RuntimeError):
    """A server the distributed suite needs does not answer."""


def require_servers() -> None:
    """
    Fail at once, naming each server that does not answer and how to start it.

    :raises ServerMissing: PostgreSQL or Redis is not reachable.
    """
    missing = [
        f"{name} is not reachable on {host}:{port}; {HOW_TO_START[name]}"
        for name, host, port in (
            ("PostgreSQL", POSTGRES_HOST, POSTGRES_PORT),
            ("Redis", REDIS_HOST, REDIS_PORT),
        )
        if not _answers(host, port)
    ]
    if missing:
        raise ServerMissing("The distributed suite needs both servers:\n  " + "\n  ".join(missing))


def _answers(host: str, port: int) -> bool:
    try:
        with closing(socket.create_connection((host, port), timeout=3)):
            return True
    except OSError:
        return False


def database_url(database: str, *, driver: str = "postgresql+psycopg2") -> str:
    return f"{driver}://{POSTGRES_USER}@{POSTGRES_HOST}:{POSTGRES_PORT}/{database}"


def broker_url() -> str:
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/0"


def create_database(name: str) -> None:
    """Create an empty database ``name`` (a fresh one per distributed Airflow)."""
    _admin(f'CREATE DATABASE "{name}"')


def drop_database(name: str) -> None:
    """Drop database ``name``, closing whatever connections are left to it."""
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _admin(statement: str) -> None:
    # Imported here: psycopg2 is in the distributed extra only, and make test never gets here.
    import psycopg2

    connection = psycopg2.connect(
        host=POSTGRES_HOST, port=POSTGRES_PORT, user=POSTGRES_USER, dbname="postgres"
    )
    try:
        # CREATE and DROP DATABASE cannot run inside a transaction.
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(statement)
    finally:
        connection.close()


if __name__ == "__main__":
    # make test-distributed's first step: fail at once, naming what is missing, before anything starts.
    try:
        require_servers()
    except ServerMissing as missing:
        raise SystemExit(str(missing)) from None
    print(f"PostgreSQL on {POSTGRES_HOST}:{POSTGRES_PORT} and Redis on {REDIS_HOST}:{REDIS_PORT} answer")
