"""Reports end to end: a short run and a small sweep give a self-contained report.html
whose every figure is a valid PNG (embedded and under figures/); ``mlmarket report DIR``
rebuilds it from the saved tables; ``mlmarket run`` builds it unless ``--no-report``,
and a report that fails does not cost the run its results."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image

import analysis.report
from analysis import plots
from analysis.report import Report, build_report, build_sweep_report, folder_kind
from sim import load_scenario, run
from sim.cli import main

PNG = b"\x89PNG\r\n\x1a\n"
RUN_FIGURES = {
    "price_supply",
    "active_agents",
    "metamodel",
    "stakes_payouts",
    "roi_distribution",
    "lorenz",
    "provider_payout_quality",
    "model_payout_contribution",
    "flows_network",
    "adversaries",  # small has free riders
    "secure_compute",  # trained under mpc
}


def check_png(data: bytes, path: Path) -> None:
    assert data[:8] == PNG and len(data) > 5_000, path
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG" and im.width >= 400 and im.height >= 200


def check_self_contained(page: str, figures: list[str], folder: Path) -> None:
    """No external resource; every figure embedded, and identical to its PNG file."""
    low = page.lower()
    for bad in ('src="http', "src='http", "<script", "<link", "@import", "url("):
        assert bad not in low, bad
    srcs = re.findall(r'<img src="([^"]+)"', page)
    assert len(srcs) == len(figures)
    for src, name in zip(srcs, figures, strict=True):
        assert src.startswith("data:image/png;base64,")
        data = base64.b64decode(src.split(",", 1)[1])
        path = folder / "figures" / f"{name}.png"
        assert data == path.read_bytes()
        check_png(data, path)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "small"
    run(load_scenario("small", ["run.rounds=10", "mechanisms.privacy.name=mpc"])).write(out)
    return out


@pytest.fixture(scope="module")
def report(run_dir) -> Path:
    """``mlmarket report DIR`` on a run folder written without a report."""
    assert not (run_dir / "report.html").exists()
    assert main(["report", str(run_dir)]) == 0
    return run_dir / "report.html"


def test_run_report_has_every_figure_as_a_valid_png(report, run_dir):
    files = {p.stem for p in (run_dir / "figures").glob("*.png")}
    assert files == RUN_FIGURES
    page = report.read_text(encoding="utf-8")
    names = re.findall(r'<figure id="fig-([^"]+)"', page)
    assert set(names) == RUN_FIGURES
    check_self_contained(page, names, run_dir)


def test_run_report_shows_the_headline_and_scenario(report, run_dir):
    page = report.read_text(encoding="utf-8")
    summary = json.loads((run_dir / "summary.json").read_text())
    for section in (
        "Headline",
        "Scenario",
        "Over time",
        "Who wins",
        "Does payout follow value",
        "Flows",
        "Secure computation",
        "Adversaries",
        "Provenance",
    ):
        assert f"<h2>{section}</h2>" in page
    assert f"mean score {summary['metamodel']['mean_corr']:+.4f}" in page
    assert "name: numerai" in page or summary["mechanisms"]["reward"] in page
    assert "<title>mlmarket run small</title>" in page


def test_transfer_to_adversaries_matches_the_summary(run_dir):
    agents = pd.read_parquet(run_dir / "agents.parquet")
    ledger = pd.read_parquet(run_dir / "ledger.parquet")
    summary = json.loads((run_dir / "summary.json").read_text())
    src = plots.adversary_sources(ledger, plots.outcomes(agents))
    assert src["tokens"].sum() == pytest.approx(
        summary["adversaries"]["transfer_tokens"], rel=1e-9, abs=1e-9
    )


def test_run_builds_the_report_unless_no_report(tmp_path, monkeypatch, capsys):
    calls = []

    def fake(folder, strict=False):
        calls.append(Path(folder))
        return Report(Path(folder) / "report.html", "run", ["x"], seconds=0.1)

    monkeypatch.setattr(analysis.report, "build_report", fake)
    out = tmp_path / "with"
    assert main(["run", "small", "--rounds", "2", "--quiet", "--out", str(out)]) == 0
    assert calls == [out]
    assert "report in" in capsys.readouterr().out
    calls.clear()
    out = tmp_path / "without"
    args = ["run", "small", "--rounds", "2", "--quiet", "--no-report", "--out", str(out)]
    assert main(args) == 0
    assert calls == [] and (out / "summary.json").is_file()
    assert not (out / "report.html").exists()


def test_a_failing_report_keeps_the_results_and_exits_1(tmp_path, monkeypatch, capsys):
    def broken(folder, strict=False):
        raise RuntimeError("no disk left")

    monkeypatch.setattr(analysis.report, "build_report", broken)
    out = tmp_path / "run"
    assert main(["run", "small", "--rounds", "2", "--quiet", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "report failed" in err[0] and "no disk left" in err[0]
    assert (out / "summary.json").is_file() and (out / "agents.parquet").is_file()


def test_report_of_a_folder_that_is_neither_exits_2(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "neither a run" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing")]) == 2


def test_sections_follow_the_run(tmp_path, monkeypatch):
    """Plaintext and no adversaries: no secure-computation or adversary section."""
    asked = []
    monkeypatch.setattr(
        analysis.report._Page, "figure", lambda self, name, caption, build: asked.append(name)
    )
    out = tmp_path / "plain"
    over = ["run.rounds=3", "population.free_riders.count=0", "population.developers.count=6"]
    run(load_scenario("small", over)).write(out)
    build_report(out, strict=True)
    assert set(asked) == RUN_FIGURES - {"secure_compute", "adversaries"}
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "Secure computation" not in page and "<h2>Adversaries</h2>" not in page


# --------------------------------------------------------------------------- a sweep

TINY = {
    "base": "small",
    "overrides": {"run.rounds": 4, "population.developers.count": 8},
    "vary": {
        "population.free_riders.count": [0, 2],
        "mechanisms.slashing.name": ["none", "burn_negative"],
    },
    "seeds": 2,
}


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory) -> Path:
    from sim.sweep import load_sweep, run_sweep

    folder = tmp_path_factory.mktemp("sweep")
    spec = folder / "tiny.yaml"
    spec.write_text(yaml.safe_dump(TINY, sort_keys=False))
    out = folder / "out"
    outcome = run_sweep(load_sweep(spec), out, workers=1)
    assert outcome.complete and outcome.failed == 0
    # one more run, failed, as a sweep records a run that raised
    part = sorted((out / "runs.parquet").glob("part-*.parquet"))[0]
    row = pq.read_table(part).to_pandas().iloc[:1].copy()
    row = row.loc[:, :"wall_s"]  # a failed run has no summary values (sim.sweep.failed_row)
    row["seed"], row["status"], row["error"] = 7, "failed", "ValueError: boom at round 3"
    row["wall_s"] = float("nan")
    row.to_parquet(out / "runs.parquet" / "part-09999.parquet", index=False)
    return out


def test_sweep_report(sweep_dir, monkeypatch):
    monkeypatch.setattr(analysis.report, "MAX_METRICS", 3)  # fewer figures, a faster test
    assert folder_kind(sweep_dir) == "sweep"
    path = build_sweep_report(sweep_dir, strict=True)
    page = path.read_text(encoding="utf-8")
    names = re.findall(r'<figure id="fig-([^"]+)"', page)
    assert any(n.startswith("sweep_metric_") for n in names)
    assert sum(n.startswith("sweep_metric_") for n in names) >= 3
    assert "sweep_heatmap_population_free_riders_count__mechanisms_slashing_name" in names
    assert "sweep_sensitivity" in names
    assert {p.stem for p in (sweep_dir / "figures").glob("*.png")} == set(names)
    check_self_contained(page, names, sweep_dir)
    assert "<h2>Failed runs (1)</h2>" in page and "boom at round 3" in page
    assert "9 runs" in page and "8 ok, 1 failed" in page
