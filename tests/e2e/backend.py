"""The distributed backend's servers: PostgreSQL for the metadata database, Redis for Celery's broker.

Both run outside the harness (on CI and development machines: PostgreSQL on 127.0.0.1:5432 with trust
auth, Redis on 127.0.0.1:6379). Each distributed Airflow gets a database of its own, created here and
dropped when it stops, and a Redis key prefix of its own, so runs on one machine never see each other.
"""

from __future__ import annotations

import socket
import subprocess
import time
from contextlib import closing, contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

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


def terminate_connections(database: str) -> int:
    """
    End every backend connection to ``database``, as a PostgreSQL restart or failover does; return how many.

    What the Airflow sees is what a restart shows its clients (each connection dropped mid-use), without
    stopping the server other databases on this machine share.
    """
    import psycopg2

    connection = psycopg2.connect(
        host=POSTGRES_HOST, port=POSTGRES_PORT, user=POSTGRES_USER, dbname="postgres"
    )
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (database,),
            )
            row = cursor.fetchone()
    finally:
        connection.close()
    return int(row[0]) if row else 0


@contextmanager
def redis_stopped() -> Iterator[None]:
    """
    Shut this machine's Redis down without saving (it keeps nothing on disk), and start it again on exit.

    Inside, Redis is gone and so is everything it held: Celery's queued messages, as a restart loses
    them. The server is started again with the settings it ran with, even when the body fails, and this
    returns once it answers.
    """
    import redis

    server = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
    config: dict[str, str] = {
        key: str(server.config_get(key)[key]) for key in ("dir", "save", "appendonly", "protected-mode")
    }
    try:
        server.shutdown(nosave=True)
    except redis.ConnectionError:
        pass  # SHUTDOWN closes the connection it came on: that is its answer
    try:
        yield
    finally:
        subprocess.run(
            [
                "redis-server",
                "--bind",
                REDIS_HOST,
                "--port",
                str(REDIS_PORT),
                "--daemonize",
                "yes",
                *(arg for key, value in config.items() for arg in (f"--{key}", value)),
            ],
            check=True,
            timeout=30,
        )
        deadline = time.monotonic() + 30
        while not _answers(REDIS_HOST, REDIS_PORT):
            if time.monotonic() > deadline:
                raise ServerMissing(f"Redis did not come back on {REDIS_HOST}:{REDIS_PORT}")
            time.sleep(0.2)


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
