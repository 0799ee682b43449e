"""The main job: ``make demo``'s quick mode writes a report with every section."""

from __future__ import annotations

import re

from workbench.demo import run_demo


def test_quick_demo_writes_every_section(tmp_path, one_thread):
    path = run_demo(tmp_path / "demo", quick=True, device="cpu")
    html = path.read_text()
    for heading in ("1. The bundled tables", "2. A real collection", "3. Learning curves",
                    "4. Feature evolution", "5. Search on the NAS-Bench-201 table",
                    "6. Predictors against the baselines"):
        assert heading in html, heading
    # the dynamics predictor ranked the demo's runs of both spaces
    assert re.search(r"nb201 demo runs ranked by the dynamics predictor", html)
    assert re.search(r"nb101 demo runs ranked by the dynamics predictor", html)
    # the bundled predictor was fitted on NB201 `small` runs: the report says how these differ
    # (rank_runs' warning goes into the report, not to the console)
    assert re.search(r"Note on the nb101 ranking: .*differ", html)
