"""
The wheel as a user gets it: built from this tree, installed into a new venv with only its own dependencies.

Every other suite imports the project from the source tree through an editable install, beside the
test tools; neither shows whether the wheel carries every module, its ``py.typed`` markers and its
entry points, or whether its published dependencies are enough. This one runs the Airflow CLI of the
new venv, from a directory outside the checkout, in a throwaway ``AIRFLOW_HOME``. The venv is new on
every run (pip's cache keeps it to about a minute); run with ``make package-test``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import venv
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from standard_ext import __version__

pytestmark = [pytest.mark.package, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
OUR_PACKAGES = ("task_sdk_ext", "standard_ext", "airflow_durable_trigger")

PARENT_DAG = """
from __future__ import annotations

import pendulum

from airflow.sdk import dag
from standard_ext.operators.trigger_dagrun import TriggerDagRunOperator
from standard_ext.operators.trigger_dagruns import TriggerDagRunsOperator


@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False)
def fresh_install_parent():
    TriggerDagRunOperator(
        task_id="one", trigger_dag_id="child", wait_for_completion=True, deferrable=True
    )
    TriggerDagRunsOperator(task_id="many", trigger_dag_id="child", confs=[{"n": 1}, {"n": 2}])


fresh_install_parent()
"""


@dataclass(frozen=True)
class FreshInstall:
    """A venv holding only the wheel and what its metadata pulls in, and an Airflow home to run it in."""

    bin: Path
    home: Path
    workdir: Path
    wheel: Path

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run a command of the venv with the home's environment, from outside the checkout."""
        env = {name: value for name, value in os.environ.items() if not name.startswith("AIRFLOW")}
        env.pop("PYTHONPATH", None)
        env.update(
            AIRFLOW_HOME=str(self.home),
            AIRFLOW__CORE__DAGS_FOLDER=str(self.home / "dags"),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            VIRTUAL_ENV=str(self.bin.parent),
            PATH=f"{self.bin}{os.pathsep}{env.get('PATH', '')}",
        )
        done = subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            env=env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done

    def json(self, *args: str) -> Any:
        """Run an Airflow CLI command with ``-o json`` and return what it printed, parsed."""
        lines = self.run("airflow", *args, "-o", "json").stdout.splitlines()
        # Airflow logs warnings to stdout too, before the document; a log line can start with "[".
        for start, line in enumerate(lines):
            if line.startswith(("[", "{")):
                try:
                    return json.loads("\n".join(lines[start:]))
                except json.JSONDecodeError:
                    continue
        raise AssertionError(f"airflow {' '.join(args)} printed no JSON document:\n" + "\n".join(lines))


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> FreshInstall:
    base = tmp_path_factory.mktemp("fresh-install")
    dist = base / "dist"
    # pip builds the wheel in an isolated environment with the build backend pyproject.toml names.
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(dist), str(ROOT)],
        check=True,
        timeout=300,
    )
    (wheel,) = dist.glob("airflow_durable_trigger-*.whl")
    env_dir = base / "venv"
    # The pip that comes with the interpreter, not an upgraded one: what a user's new venv has.
    venv.EnvBuilder(with_pip=True).create(env_dir)
    bin_dir = env_dir / "bin"
    subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", str(wheel)], check=True, timeout=900
    )
    home = base / "home"
    (home / "dags").mkdir(parents=True)
    (home / "dags" / "parent.py").write_text(textwrap.dedent(PARENT_DAG))
    workdir = base / "work"
    workdir.mkdir()
    return FreshInstall(bin=bin_dir, home=home, workdir=workdir, wheel=wheel)


def test_the_wheel_is_named_after_the_version(fresh: FreshInstall) -> None:
    assert fresh.wheel.name == f"airflow_durable_trigger-{__version__}-py3-none-any.whl"


def test_the_wheel_holds_the_three_packages_and_the_license(fresh: FreshInstall) -> None:
    names = zipfile.ZipFile(fresh.wheel).namelist()
    dist_info = f"airflow_durable_trigger-{__version__}.dist-info"

    # No tests, example Dags, benchmark or docs: they stay in the repository.
    assert {name.split("/")[0] for name in names} == {*OUR_PACKAGES, dist_info}
    assert {f"{dist_info}/licenses/LICENSE", f"{dist_info}/licenses/NOTICE"} <= set(names)
    metadata = zipfile.ZipFile(fresh.wheel).read(f"{dist_info}/METADATA").decode()
    assert "Provides-Extra" not in metadata


def test_only_published_dependencies_are_installed(fresh: FreshInstall) -> None:
    installed = {
        p["name"].lower()
        for p in json.loads(fresh.run("python", "-m", "pip", "list", "--format", "json").stdout)
    }

    assert {"airflow-durable-trigger", "apache-airflow", "apache-airflow-task-sdk"} <= installed
    assert "apache-airflow-providers-standard" in installed
    # The test, benchmark and docs tools are dependency groups, never pulled in by the package.
    assert installed.isdisjoint(
        {"pytest", "mypy", "ruff", "matplotlib", "sphinx", "celery", "psycopg2-binary"}
    )


def test_the_packages_come_from_the_venv_with_their_type_markers(fresh: FreshInstall) -> None:
    script = "import importlib, pathlib, sys; " + "; ".join(
        f"print(pathlib.Path(importlib.import_module({name!r}).__file__).parent)" for name in OUR_PACKAGES
    )
    folders = [Path(line) for line in fresh.run("python", "-c", script).stdout.split()]

    assert len(folders) == len(OUR_PACKAGES)
    for folder in folders:
        assert folder.is_relative_to(fresh.bin.parent), f"{folder} is not the installed copy"
        assert (folder / "py.typed").is_file()


def test_airflow_lists_the_provider(fresh: FreshInstall) -> None:
    providers = {p["package_name"]: p for p in fresh.json("providers", "list")}

    assert providers["airflow-durable-trigger"]["version"] == __version__
    assert "apache-airflow-providers-standard" in providers


@pytest.mark.parametrize("command", [("providers", "list"), ("providers", "links"), ("plugins",)])
def test_the_cli_says_nothing_about_us_but_our_entries(fresh: FreshInstall, command: tuple[str, ...]) -> None:
    done = fresh.run("airflow", *command)

    # The providers manager logs a warning for a provider it cannot validate or import a class of.
    trouble = [
        line
        for line in (done.stdout + done.stderr).splitlines()
        if any(word in line.lower() for word in ("warning", "error", "traceback"))
    ]
    assert trouble == []


def test_the_provider_names_its_documentation_and_link(fresh: FreshInstall) -> None:
    script = (
        "from airflow.providers_manager import ProvidersManager as M; m = M(); "
        "p = m.providers['airflow-durable-trigger']; print(p.data['name']); "
        "print(p.data['documentation-url']); print(*m.extra_links_class_names)"
    )
    name, url, links = fresh.run("python", "-c", script).stdout.splitlines()[-3:]

    assert name == "Durable Trigger (airflow-durable-trigger)"
    assert url == "https://airflow-durable-trigger.readthedocs.io/"
    assert "standard_ext.links.TriggeredDagRunsLink" in links.split()


def test_airflow_loads_the_plugin(fresh: FreshInstall) -> None:
    plugins = {p["name"]: p for p in fresh.json("plugins")}

    assert "task_sdk_ext" in plugins
    assert f"airflow-durable-trigger=={__version__}" in plugins["task_sdk_ext"]["source"]
    # The Child runs tab: its React app, and the API server app that serves its module and data.
    tab = plugins["standard_ext_child_runs"]
    assert [app["destination"] for app in tab["react_apps"]] == ["task_instance"]
    assert [app["url_prefix"] for app in tab["fastapi_apps"]] == ["/standard-ext"]


def test_the_wheel_carries_the_tab_s_module(fresh: FreshInstall) -> None:
    names = zipfile.ZipFile(fresh.wheel).namelist()
    assert "standard_ext/ui/static/child_runs.js" in names


def test_a_dag_using_the_operators_parses(fresh: FreshInstall) -> None:
    fresh.run("airflow", "db", "migrate")

    assert fresh.json("dags", "list-import-errors", "--local") == []
    dags = {d["dag_id"] for d in fresh.json("dags", "list", "--local")}
    assert "fresh_install_parent" in dags
