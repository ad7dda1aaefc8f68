"""A ``trigger_run_id`` that renders to what cannot be meant is refused, naming the task, before anything is sent."""

from __future__ import annotations

from typing import TYPE_CHECKING

import jinja2
import pytest
from jinja2.nativetypes import NativeEnvironment

from standard_ext.operators.modes.parameter_checks import check_rendered_run_id

if TYPE_CHECKING:
    from tests.fake_supervisor import FakeSupervisor
    from tests.unit.conftest import MakeParent

pytestmark = pytest.mark.timeout(30)

# The template the request/response example used to give: with an empty request id it renders None
# under native rendering and the text "None" without.
OR_NONE = "{{ params.request_id or None }}"
EMPTY = {"request_id": ""}


class TestRendered:
    def test_or_none_renders_what_the_check_refuses_in_both_modes(self) -> None:
        native: object = NativeEnvironment().from_string(OR_NONE).render(params=EMPTY)
        text: object = jinja2.Environment().from_string(OR_NONE).render(params=EMPTY)

        assert (native, text) == (None, "None")
        for value in (native, text):
            with pytest.raises(ValueError, match="Task 'ask', parameter trigger_run_id: it rendered to"):
                check_rendered_run_id(value, task_id="ask", given=True)

    def test_the_examples_template_renders_a_fresh_id_without_a_request_id(self) -> None:
        template = "{{ params.request_id or run_id ~ '__try' ~ ti.try_number }}"
        ti = {"try_number": 2}
        for env in (NativeEnvironment(), jinja2.Environment()):
            value = env.from_string(template).render(params=EMPTY, run_id="manual__1", ti=ti)
            check_rendered_run_id(value, task_id="ask", given=True)
            assert value == "manual__1__try2"
            given = env.from_string(template).render(
                params={"request_id": "req-42"}, run_id="manual__1", ti=ti
            )
            assert given == "req-42"

    @pytest.mark.parametrize("value", [None, "None", "", "   "])
    def test_not_given_means_generated(self, value: object) -> None:
        check_rendered_run_id(value, task_id="ask", given=False)


class TestOperator:
    @pytest.mark.parametrize("value", ["None", "", "  "])
    def test_refused_before_anything_is_sent(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, value: str
    ) -> None:
        supervisor.add_dag("child")
        parent = make_parent(trigger_run_id=value, wait_for_completion=True, cancel_on_kill=True)

        with pytest.raises(
            ValueError, match=rf"Task 'trigger', parameter trigger_run_id: it rendered to {value!r}"
        ):
            parent.run()

        # Not even the connection was read: nothing was sent.
        assert supervisor.sent == []
        assert parent.store.values == {}

    def test_a_real_run_id_is_taken(self, supervisor: FakeSupervisor, make_parent: MakeParent) -> None:
        supervisor.add_dag("child")

        make_parent(trigger_run_id="req-42", wait_for_completion=True).run()

        assert [run_id for _, run_id in supervisor.runs] == ["req-42"]
