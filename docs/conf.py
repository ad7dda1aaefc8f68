"""Sphinx configuration of the documentation site (``make docs``; Read the Docs runs the same build)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The provider package lives under providers/; an editable install puts it on the path, but the build
# must not depend on how the project was installed.
sys.path[:0] = [str(ROOT), str(ROOT / "providers")]

# autodoc imports Airflow, which writes an airflow.cfg into AIRFLOW_HOME: keep it inside the build.
os.environ.setdefault("AIRFLOW_HOME", str(ROOT / "docs" / "_build" / "airflow-home"))

from standard_ext import __version__  # noqa: E402

project = "airflow-durable-trigger"
author = "The airflow-durable-trigger authors"
copyright = "The airflow-durable-trigger authors"
version = release = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]

myst_enable_extensions = ["colon_fence", "deflist"]
# Headings down to ### get anchors, so pages can link to a section: [polling](polling.md#following-the-run).
myst_heading_anchors = 3

html_theme = "furo"
html_title = f"airflow-durable-trigger {release}"
html_static_path: list[str] = []

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"show-inheritance": True}

# Nitpicky mode (``-n``) checks every cross-reference; the site has no intersphinx (the build must not
# need the network), so references into Airflow, the standard library and third parties cannot resolve.
# References into this project's own packages must resolve; the ones below are everybody else's.
nitpick_ignore_regex = [
    (
        r"py:.*",
        r"(airflow|pendulum|datetime|collections|typing|structlog|httpx|sqlalchemy|asyncio|_asyncio|threading"
        r"|enum|contextlib|contextvars|opentelemetry|pydantic|fastapi|starlette)(\..*)?",
    ),
    (r"py:.*", r"(Any|Context|Sequence|Mapping|Iterable|Callable|datetime|timedelta|Exception|Session)"),
    # Airflow's and structlog's names, as the docstrings and annotations write them unqualified.
    (
        r"py:.*",
        r"(AirflowException|AirflowRuntimeError|AirflowFailException|AirflowTaskTimeout|TaskDeferred|TaskDeferralTimeout"
        r"|DagRunTriggerException|TriggerEvent|BaseTrigger|BaseOperator|TaskSuccessEvent|TaskInstanceKey"
        r"|Connection|JsonValue|FilteringBoundLogger|Span|AbstractContextManager|ArgNotSet)",
    ),
    # Aliases of callables, defined for the type checker only.
    (
        r"py:.*",
        r"(Decide|Count)",
    ),
    # Type variables, which autodoc writes as module attributes.
    (r"py:.*", r"standard_ext\..*\.T"),
]
