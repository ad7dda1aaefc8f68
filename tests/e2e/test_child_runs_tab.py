"""
The "Child runs" tab in a real browser: headless Chromium from Debian's packages, on the e2e Airflow.

A person signs in on Airflow's own login page, opens the task instance of a ``TriggerDagRunsOperator`` of
twelve items, two of them failed, and finds the counts, the rows and their states; one row's link leads to
that child run's page. The test takes the screenshot the docs show (``docs/_static/child-runs.png``), then
opens the tab as an API server without the package would serve it: the tab says so in one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.browser import chromium

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

    from tests.e2e.harness import EmbeddedAirflow
    from tests.e2e.scenario import Scenario

PARENT, TASK, CHILD = "child_runs_fan_out", "trigger_children", "resume_child"
ITEMS, FAILING = 12, (3, 8)
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "_static" / "child-runs.png"
# A browser's page loads and the tab's first answer: far above what they take on an idle machine.
UI_SECONDS = 60


# Every page from now on answers the tab's data route as an API server without the package does.
WITHOUT_THE_ROUTE = """
const fetchAsUsual = window.fetch;
window.fetch = (input, init) =>
  String(input instanceof Request ? input.url : input).includes("standard-ext/child-runs")
    ? Promise.resolve(new Response(JSON.stringify({detail: "Not Found"}),
        {status: 404, headers: {"content-type": "application/json"}}))
    : fetchAsUsual(input, init);
"""


def sign_in(driver: WebDriver, airflow: EmbeddedAirflow) -> None:
    """Sign in as the admin on the simple auth manager's login page; it sets the ``_token`` cookie."""
    driver.get(f"{airflow.base_url}/auth/login/")
    wait = WebDriverWait(driver, UI_SECONDS)
    username = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "input[name='username']"))
    username.send_keys("admin")
    driver.find_element(By.CSS_SELECTOR, "input[type='password']").send_keys(airflow.admin_password)
    driver.find_element(By.CSS_SELECTOR, "button[type='submit']").click()
    wait.until(lambda d: d.get_cookie("_token") is not None)


@pytest.mark.timeout(420, method="signal")
def test_the_tab_shows_each_item_links_its_run_and_says_when_it_cannot(
    scenario: Scenario, airflow: EmbeddedAirflow
) -> None:
    run_id = scenario.trigger(PARENT)
    parent = scenario.wait_run_finished(PARENT, run_id, timeout=300)
    assert parent["state"] == "success"
    children = {run["conf"]["item"]: run for run in scenario.runs_of(CHILD)}
    assert sorted(children) == list(range(ITEMS))

    with chromium() as driver:
        sign_in(driver, airflow)
        tab = f"{airflow.base_url}/dags/{PARENT}/runs/{quote(run_id, safe='')}/tasks/{TASK}/plugin/standard-ext-child-runs"
        driver.get(tab)
        wait = WebDriverWait(driver, UI_SECONDS)
        counts = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "[data-testid='child-runs-counts']"))
        shown = {
            badge.get_attribute("data-state"): int(badge.get_attribute("data-count") or -1)
            for badge in counts.find_elements(By.CSS_SELECTOR, "[data-state]")
        }
        assert shown == {
            "success": ITEMS - len(FAILING),
            "failed": len(FAILING),
            "running": 0,
            "queued": 0,
            "not_started": 0,
        }
        rows = driver.find_elements(By.CSS_SELECTOR, "[data-testid='child-run-row']")
        states = {int(row.get_attribute("data-index") or -1): row.get_attribute("data-state") for row in rows}
        assert states == {item: "failed" if item in FAILING else "success" for item in range(ITEMS)}
        # The tab as a person sees it, for the docs.
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(SCREENSHOT))

        failed_run_id = children[FAILING[0]]["dag_run_id"]
        row = next(r for r in rows if r.get_attribute("data-index") == str(FAILING[0]))
        link = row.find_element(By.CSS_SELECTOR, "[data-testid='child-run-link']")
        assert link.text == failed_run_id
        link.click()
        wait.until(lambda d: f"/dags/{CHILD}/runs/" in d.current_url)
        assert quote(failed_run_id, safe="") in driver.current_url or failed_run_id in driver.current_url

        # An API server without the package: its route answers Airflow's "Not Found", and the tab says so.
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WITHOUT_THE_ROUTE})
        driver.get(tab)
        line = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "[data-testid='child-runs-message']"))
        assert "not available here" in line.text
