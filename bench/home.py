"""A throwaway ``AIRFLOW_HOME`` for the benchmark's own process, set before anything imports Airflow."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path


def isolate_airflow_home() -> Path:
    """
    Point this process's Airflow at a temporary home, deleted at exit, and return it.

    The bench imports Airflow itself (its Dag module, the operators, the fake supervisor of case 5).
    Airflow reads its configuration once, on first import, and creates its home (``~/airflow`` by
    default) with a config file in it: without this, the bench would write there, or read the settings
    of another Airflow on the machine. The embedded Airflows get homes of their own either way.

    :raises RuntimeError: Airflow was imported already, too late to isolate it.
    """
    if "airflow" in sys.modules:
        raise RuntimeError("Airflow was imported before the bench could give it a home of its own")
    home = Path(tempfile.mkdtemp(prefix="airflow-bench-"))
    for name in [name for name in os.environ if name.startswith("AIRFLOW__")]:
        del os.environ[name]
    os.environ.pop("AIRFLOW_CONFIG", None)
    os.environ["AIRFLOW_HOME"] = str(home)
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    return home
