from __future__ import annotations

import socket
from typing import TYPE_CHECKING

import pytest

from tests.e2e import backend

if TYPE_CHECKING:
    from collections.abc import Iterator


def closed_port() -> int:
    """A port nothing listens on: bound once to get it from the OS, then released."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def listening_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def test_both_servers_answering_passes(monkeypatch: pytest.MonkeyPatch, listening_port: int) -> None:
    monkeypatch.setattr(backend, "POSTGRES_PORT", listening_port)
    monkeypatch.setattr(backend, "REDIS_PORT", listening_port)

    backend.require_servers()


@pytest.mark.parametrize("missing", ["PostgreSQL", "Redis"])
def test_a_missing_server_is_named_with_how_to_start_it(
    monkeypatch: pytest.MonkeyPatch, listening_port: int, missing: str
) -> None:
    port = closed_port()
    monkeypatch.setattr(backend, "POSTGRES_PORT", port if missing == "PostgreSQL" else listening_port)
    monkeypatch.setattr(backend, "REDIS_PORT", port if missing == "Redis" else listening_port)

    with pytest.raises(backend.ServerMissing) as raised:
        backend.require_servers()

    message = str(raised.value)
    assert f"{missing} is not reachable on 127.0.0.1:{port}" in message
    assert backend.HOW_TO_START[missing] in message
    other = {"PostgreSQL", "Redis"} - {missing}
    assert not any(f"{name} is not reachable" in message for name in other)
