"""Reading and keeping an embedded Airflow's log files."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.e2e import logfiles

if TYPE_CHECKING:
    from pathlib import Path


def test_a_missing_file_reads_empty_and_tails_as_a_note(tmp_path: Path) -> None:
    assert logfiles.read(tmp_path / "gone.log") == ""
    assert logfiles.tail(tmp_path / "gone.log", 5) == "(no gone.log)"


def test_one_log_is_tailed_as_is_several_with_headings(tmp_path: Path) -> None:
    for name in ("scheduler", "triggerer"):
        (tmp_path / f"{name}.log").write_text("\n".join(f"{name} {i}" for i in range(30)))

    assert logfiles.tails([tmp_path / "scheduler.log"], 2) == "scheduler 28\nscheduler 29"
    both = logfiles.tails([tmp_path / "scheduler.log", tmp_path / "triggerer.log"], 40)
    # Each of the two gets half of the lines, under its name.
    assert both.splitlines()[0] == "----- scheduler.log"
    assert both.count("scheduler ") == 20
    assert both.count("triggerer ") == 20


def test_task_log_joins_a_try_and_its_trigger_of_one_map_index(tmp_path: Path) -> None:
    folder = tmp_path / "logs" / "dag_id=d" / "run_id=r" / "task_id=t" / "map_index=2"
    folder.mkdir(parents=True)
    (folder / "attempt=1.log").write_text("task")
    (folder / "attempt=1.log.trigger.7.log").write_text("trigger")
    (folder / "attempt=2.log").write_text("next try")

    assert logfiles.task_log(tmp_path, "d", "r", "t", 1, map_index=2) == "task\ntrigger"
    assert logfiles.task_log(tmp_path, "d", "r", "t", 1) == ""


def test_save_copies_component_and_task_logs(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "logs" / "dag_id=d").mkdir(parents=True)
    (home / "standalone.log").write_text("standalone")
    (home / "logs" / "dag_id=d" / "attempt=1.log").write_text("task")

    dest = logfiles.save(home, tmp_path / "kept")

    assert (dest / "standalone.log").read_text() == "standalone"
    assert (dest / "logs" / "dag_id=d" / "attempt=1.log").read_text() == "task"
