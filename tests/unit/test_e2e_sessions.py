"""The end-to-end harness's process bookkeeping, on shell commands instead of Airflow's."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import psutil
import pytest

from tests.e2e.polling import wait_for
from tests.e2e.sessions import Sessions
from tests.e2e.workers import CeleryWorkers

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
# Stands in for ``airflow celery worker ... --celery-hostname <name>@%h ...``: logs as Celery does once
# it is ready, then stays up.
FAKE_WORKER = '#!/bin/sh\necho "celery@$6 ready."\nexec sleep 60\n'


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[Sessions]:
    started = Sessions(home=tmp_path, command=_shell(tmp_path))
    try:
        yield started
    finally:
        started.stop()


def _shell(tmp_path: Path) -> Path:
    script = tmp_path / "fake-airflow"
    script.write_text('#!/bin/sh\nexec /bin/sh -c "$1"\n')
    script.chmod(0o755)
    return script


def _alive(pids: list[int]) -> list[int]:
    return [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]


class TestStartAndStop:
    def test_output_goes_to_the_named_log(self, sessions: Sessions, tmp_path: Path) -> None:
        sessions.start("standalone", ["echo started; sleep 60"], env=ENV)

        assert sessions.log_path("standalone") == tmp_path / "standalone.log"
        assert sessions.log_path("scheduler") == tmp_path / "scheduler.log"
        wait_for(lambda: "started" in sessions.log_path("standalone").read_text(), 10, "the echo", 0.05)
        assert sessions.logs() == [tmp_path / "standalone.log"]

    def test_stop_ends_every_process_of_every_session(self, sessions: Sessions) -> None:
        sessions.start("scheduler", ["sleep 60 & sleep 60"], env=ENV)
        sessions.start("triggerer", ["sleep 60"], env=ENV)
        pids = wait_for(
            lambda: sessions.pids() if len(sessions.pids()) >= 4 else None, 10, "4 processes", 0.05
        )

        sessions.stop()

        assert _alive(pids) == []
        assert sessions.running == {}
        assert sessions.pids() == []


class TestExited:
    def test_an_exited_session_fails_the_check_then_is_reported_once(self, sessions: Sessions) -> None:
        sessions.start("scheduler", ["exit 3"], env=ENV)
        sessions.start("triggerer", ["sleep 60"], env=ENV)
        wait_for(lambda: sessions.running["scheduler"].poll() is not None, 10, "the exit", 0.05)

        with pytest.raises(RuntimeError, match="airflow scheduler exited with 3"):
            sessions.check_running()
        assert sessions.exited() == ["scheduler"]
        assert sessions.exited() == []
        sessions.check_running()

    def test_a_forgotten_session_is_not_checked_but_still_stopped(self, sessions: Sessions) -> None:
        process = sessions.start("api-server", ["sleep 60"], env=ENV)

        sessions.forget(process.pid)

        assert "api-server" not in sessions.running
        assert process.pid in sessions.pids()
        sessions.stop()
        assert _alive([process.pid]) == []


class TestReplacements:
    def test_replacements_are_numbered_and_keep_their_own_logs(self, sessions: Sessions) -> None:
        first = sessions.start_replacement("triggerer", ["echo first; sleep 60"], env=ENV)
        wait_for(lambda: "first" in sessions.log_of(first.pid), 10, "the first replacement's log", 0.05)
        sessions.forget(first.pid)
        second = sessions.start_replacement("triggerer", ["echo second; sleep 60"], env=ENV)

        assert sessions.pid("triggerer-3") == second.pid
        wait_for(lambda: "second" in sessions.log_of(second.pid), 10, "the second replacement's log", 0.05)
        with pytest.raises(KeyError):
            sessions.log_of(first.pid)


class TestCeleryWorkers:
    @pytest.fixture
    def workers(self, tmp_path: Path) -> Iterator[CeleryWorkers]:
        script = tmp_path / "fake-celery"
        script.write_text(FAKE_WORKER)
        script.chmod(0o755)
        started = Sessions(home=tmp_path, command=script)
        try:
            yield CeleryWorkers(started)
        finally:
            started.stop()

    def test_a_worker_is_found_by_queue_and_ready_once_it_says_so(self, workers: CeleryWorkers) -> None:
        workers.start("worker-1", ("default",), env=ENV)
        workers.start("worker-2", ("parents",), env=ENV)

        workers.wait_ready("worker-2", timeout=10)
        assert workers.serving("parents") == ["worker-2"]
        assert workers.queues_of("worker-1") == ("default",)
        assert workers.queues_of("scheduler") is None

    def test_killing_a_worker_ends_its_tree_and_it_serves_no_more(self, workers: CeleryWorkers) -> None:
        workers.start("worker-2", ("parents",), env=ENV)
        workers.wait_ready("worker-2", timeout=10)

        killed = workers.kill("worker-2")

        assert killed
        assert _alive(killed) == []
        assert workers.serving("parents") == []
        assert workers.running() == []
