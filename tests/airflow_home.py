"""A throwaway ``AIRFLOW_HOME`` for this process, set before anything imports Airflow."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path


def isolated_airflow_home(*, prefix: str, who: str, settings: dict[str, str] | None = None) -> Path:
    """
    Point this process's Airflow at a fresh temporary home and return it; the caller deletes it.

    Airflow reads its configuration once, on first import, and creates its home (``~/airflow`` by
    default) with a config file in it: without this, the caller would write there, or read the settings
    of another Airflow on the machine. ``AIRFLOW__*`` settings inherited from the shell are dropped for
    the same reason.

    :param prefix: the temporary directory's name prefix.
    :param who: who asks, named in the error.
    :param settings: ``AIRFLOW__*`` settings to set besides ``AIRFLOW_HOME``; ``{home}`` in a value
        becomes the home's path.
    :raises RuntimeError: Airflow was imported already, too late to isolate it.
    """
    if "airflow" in sys.modules:
        raise RuntimeError(f"Airflow was imported before {who} could give it a home of its own")
    home = Path(tempfile.mkdtemp(prefix=prefix))
    for name in [name for name in os.environ if name.startswith("AIRFLOW__")]:
        del os.environ[name]
    os.environ.pop("AIRFLOW_CONFIG", None)
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ.update({name: value.format(home=home) for name, value in (settings or {}).items()})
    return home
