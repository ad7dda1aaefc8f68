"""The guides' parameter tables name every constructor parameter of the operators they document."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from airflow.providers.standard.operators.trigger_dagrun import (
    TriggerDagRunOperator as StockTriggerDagRunOperator,
)

from standard_ext.operators.trigger_dagrun import TriggerDagRunOperator
from standard_ext.operators.trigger_dagruns import TriggerDagRunsOperator

DOCS = Path(__file__).resolve().parents[2] / "docs"
# A table row of a parameter: "| `name` | default | meaning |".
_ROW = re.compile(r"^\| `(?P<name>\w+)` \|", re.MULTILINE)


def parameters(cls: type[object]) -> set[str]:
    """The parameters ``cls.__init__`` itself declares (``**kwargs`` passes the rest on)."""
    init = vars(cls)["__init__"]
    return {
        name
        for name, p in inspect.signature(init).parameters.items()
        if name != "self" and p.kind is not inspect.Parameter.VAR_KEYWORD
    }


def table_rows(page: str) -> set[str]:
    return set(_ROW.findall((DOCS / page).read_text()))


def test_the_operator_guide_names_every_added_parameter_in_its_table() -> None:
    assert parameters(TriggerDagRunOperator) <= table_rows("operator.md")


def test_the_operator_guide_names_every_stock_parameter() -> None:
    text = (DOCS / "operator.md").read_text()
    stock_line = text[text.index("Every stock parameter works") : text.index("Added parameters:")]

    assert {name for name in parameters(StockTriggerDagRunOperator) if f"`{name}`" not in stock_line} == set()


def test_the_fan_out_guide_s_table_is_every_parameter_and_nothing_else() -> None:
    assert table_rows("fan-out.md") == parameters(TriggerDagRunsOperator)


@pytest.mark.parametrize("page", ["operator.md", "fan-out.md"])
def test_a_table_row_names_no_parameter_the_operators_lack(page: str) -> None:
    known = parameters(TriggerDagRunOperator) | parameters(TriggerDagRunsOperator)

    assert table_rows(page) - known == set()
