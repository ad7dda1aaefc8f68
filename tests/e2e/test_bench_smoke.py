"""The benchmark's smoke test: one short case through the whole pipeline, so ``make bench`` keeps working.

``make bench`` takes 20 minutes and is not part of ``make test``; this runs its shortest case (ours,
synchronous, on the 2 s child, once) on the suite's default Airflow, counts the wait's requests in the
api-server's access log, and writes the report, chart included.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from bench import latency, report, schedule_count
from bench.model import Machine, Results

if TYPE_CHECKING:
    from pathlib import Path

    from tests.e2e.harness import EmbeddedAirflow


@pytest.mark.timeout(180, method="signal")
def test_one_short_latency_case_is_measured_counted_and_reported(
    airflow: EmbeddedAirflow, tmp_path: Path
) -> None:
    lines: list[str] = []

    samples = latency.run(
        airflow, lengths=(2,), repetitions=1, variants=("ours_sync",), stagger=0.0, progress=lines.append
    )
    samples = latency.attach_requests(samples, airflow.api_server_log.read_text(errors="replace"))

    (sample,) = samples
    assert (sample.operator, sample.path, sample.state) == ("ours", "sync", "success")
    assert sample.detection is not None
    assert 0 < sample.detection < 30
    assert sample.overhead is not None
    # At least the check that saw the child end, counted where it was made.
    assert sample.requests is not None
    assert sample.requests >= 1
    assert lines == [
        f"[latency] 2 s child, repetition 1/1: ours sync {sample.detection:.1f} s "
        "(detection: parent task end - child run end)"
    ]

    results = Results(
        started_at=datetime.now(UTC),
        seconds=1.0,
        repetitions=1,
        quick=True,
        lengths=(2,),
        machine=Machine.here(),
        waits=samples,
        schedule=[schedule_count.figure(2.0), schedule_count.figure(schedule_count.LONG_CHILD_SECONDS)],
    )
    markdown, png = report.write(results, tmp_path)

    text = markdown.read_text()
    assert "## Targets" in text
    assert "| detection p50, 2 s child, ours sync | " in text
    assert "| 2 s | sync | ours | 1 | " in text
    assert png.read_bytes()[:4] == b"\x89PNG"
