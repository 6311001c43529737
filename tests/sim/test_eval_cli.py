"""`qora eval` end to end on a tiny grid: table on stdout, CSV, markdown and plots on disk."""

from __future__ import annotations

import csv

from click.testing import CliRunner

from qora.cli import main


def test_qora_eval_quick_on_a_tiny_grid(tmp_path):
    out = tmp_path / "eval"
    result = CliRunner().invoke(main, [
        "eval", "--quick", "--attacks", "none,sign_flip", "--defences", "fedavg,trimmed_mean",
        "--fractions", "0,0.3", "--heterogeneity", "iid", "--rounds", "3", "--workers", "2",
        "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Worst case over the attacks" in result.output
    for name in ("results.csv", "curves.csv", "summary.md", "curves_sign_flip.png", "worst_case.png"):
        assert (out / name).stat().st_size > 0, name
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert {(r["defence"], r["attack"]) for r in rows} == {
        ("fedavg", "none"), ("trimmed_mean", "none"), ("fedavg", "sign_flip"), ("trimmed_mean", "sign_flip")}
    assert (out / "worst_case.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unknown_names_give_a_clear_error(tmp_path):
    result = CliRunner().invoke(main, ["eval", "--attacks", "nope", "--defences", "fedavg", "--fractions", "0.3",
                                       "--heterogeneity", "iid", "--rounds", "1", "--workers", "1",
                                       "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "unknown attack" in result.output
