"""The typed models of engine/reporting/models.py say exactly which keys the documents have: a key added to (or
dropped from) report.json, a sweep summary or a comparison without the model changing fails here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_type_hints

from engine.reporting.models import Comparison, RankedPoint, Report, SweepSummary

RUN = ("--offline", "run", "reassurance", "--symbols", "BABA,0700.HK", "--end", "2022-06-30", "--no-save")


def test_a_report_has_every_key_of_the_model_and_no_other(run_cli, sample_cache: Path) -> None:
    code, out, err = run_cli(*RUN, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert set(report) == set(get_type_hints(Report)) - {"sweep"}  # `sweep` labels a sweep point's report only
    assert Report.__required_keys__ == {"schema_version", "run_id", "metrics", "trades"}  # what a read checks


def test_a_sweep_summary_and_a_comparison_match_their_models(run_cli, sample_cache: Path, tmp_path: Path) -> None:
    code, out, err = run_cli("--offline", "sweep", "reassurance", "--symbols", "BABA,0700.HK", "--end", "2022-06-30",
                             "-g", "hold=2,3", "--quiet", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert set(summary) - {"saved", "elapsed_s"} == set(get_type_hints(SweepSummary)) - {"walk_forward",
                                                                                          "walk_forward_summary"}
    point_keys = set(summary["ranking"][0])
    assert RankedPoint.__required_keys__ <= point_keys <= set(get_type_hints(RankedPoint))
    files = []
    for hold in ("2", "3"):
        code, out, err = run_cli(*RUN, "-p", f"hold={hold}", "--json")
        assert code == 0, err
        files.append(tmp_path / f"h{hold}.json")
        files[-1].write_text(out)
    code, out, err = run_cli("compare", *map(str, files), "--json")
    assert code == 0, err
    assert set(json.loads(out)) == set(get_type_hints(Comparison))
