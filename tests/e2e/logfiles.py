"""Read, tail and keep the log files an embedded Airflow writes in its temporary home."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


def read(path: Path) -> str:
    """The text of ``path``, or ``""`` if it does not exist (yet, or any more)."""
    return path.read_text(errors="replace") if path.exists() else ""


def tail(path: Path, lines: int) -> str:
    """The last ``lines`` of ``path``, or a note that the file is missing or empty."""
    return "\n".join(read(path).splitlines()[-lines:]) or f"(no {path.name})"


def tails(paths: list[Path], lines: int) -> str:
    """
    The last ``lines`` of one log, or a headed share of them from each of several.

    :param paths: the logs, one per component (a single one for ``airflow standalone``).
    :param lines: how many lines in all; each of several logs gets an equal share, at least 10.
    """
    if len(paths) == 1:
        return tail(paths[0], lines)
    return "\n".join(f"----- {path.name}\n{tail(path, max(lines // len(paths), 10))}" for path in paths)


def task_log(home: Path, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> str:
    """
    One try's log from the files Airflow wrote under ``home``: the try's own and its trigger's, if any.

    The REST API serves a try's log through the try's history row; a test reads the files only when
    Airflow has lost that row (see ``test_fan_out_narrow``), never instead of the API.
    """
    folder = home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
    if map_index >= 0:
        folder /= f"map_index={map_index}"
    files = sorted(folder.glob(f"attempt={try_number}.log*"))
    return "\n".join(path.read_text(errors="replace") for path in files)


def save(home: Path, dest: Path) -> Path:
    """Copy the component logs (``home/*.log``) and the task logs (``home/logs``) to ``dest``; return it."""
    dest.mkdir(parents=True, exist_ok=True)
    for log in home.glob("*.log"):
        shutil.copy2(log, dest / log.name)
    if (home / "logs").exists():
        shutil.copytree(home / "logs", dest / "logs", dirs_exist_ok=True)
    return dest
