"""``mlmarket sweep`` end to end: one worker, two, a Dask LocalCluster, failures, kills, resume.

Only the two-worker test lets the sweep end with its report (analysis/report.py, tested
on its own); the others pass ``--no-report``.

Every table is compared with the one-worker reference after sorting by (point_id, seed)
and dropping the timing columns: common random numbers and seeds fixed before dispatch
make them identical whatever ran them.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

import sim.sweep
from analysis.sweep import load_runs, sensitivity, summarize_points
from sim.cli import main
from sim.sweep import load_sweep, run_sweep

TINY = {
    "base": "small",
    "overrides": {"run.rounds": 4, "population.developers.count": 8},
    "vary": {
        "population.free_riders.count": [0, 2],
        "mechanisms.slashing.name": ["none", "burn_negative"],
    },
    "seeds": 2,
}


def write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def table(out: Path) -> pd.DataFrame:
    """Every row of every complete part, sorted, without the timing columns."""
    parts = sorted((out / "runs.parquet").glob("part-*.parquet"))
    df = pd.concat([pq.read_table(p).to_pandas() for p in parts], ignore_index=True)
    df = df.drop(columns=["wall_s", "cpu_s"]).sort_values(["point_id", "seed"])
    return df.reset_index(drop=True)


def same(a: pd.DataFrame, b: pd.DataFrame, dtypes: bool = True) -> None:
    pd.testing.assert_frame_equal(a, b, check_like=True, check_dtype=dtypes)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return write(tmp_path_factory.mktemp("sweep") / "tiny.yaml", TINY)


@pytest.fixture(scope="module")
def reference(tiny, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "one"
    outcome = run_sweep(load_sweep(tiny), out, workers=1)
    assert outcome.complete and outcome.ran == 8 and outcome.failed == 0
    return out


def test_one_worker_writes_the_sweep_folder(reference):
    assert {p.name for p in reference.iterdir() if not p.name.startswith(".")} == {
        "sweep.yaml",
        "points.parquet",
        "provenance.json",
        "runs.parquet",
    }
    df = table(reference)
    assert len(df) == 8 and df[["point_id", "seed"]].drop_duplicates().shape[0] == 8
    assert (df["status"] == "ok").all() and df["error"].isna().all()
    assert df["population.free_riders.count"].tolist() == [0, 0, 0, 0, 2, 2, 2, 2]
    assert df.groupby("seed")["run_seed"].nunique().tolist() == [1, 1]  # common random numbers
    assert df["agents_by_type.free_rider"].tolist() == [0, 0, 0, 0, 2, 2, 2, 2]
    assert {"roi_by_type.developer", "metamodel.mean_corr", "tokens.minted"} <= set(df.columns)
    # the seeds differ, so the same point gives different numbers
    p0 = df[df["point_id"] == 0]
    assert p0["tokens.supply_start"].nunique() == 2
    points = pd.read_parquet(reference / "points.parquet")
    assert points.columns.tolist() == [
        "point_id",
        "population.free_riders.count",
        "mechanisms.slashing.name",
    ]
    assert len(points) == 4


def test_two_local_workers_give_the_same_table(tiny, reference, tmp_path, capsys):
    out = tmp_path / "two"
    assert main(["sweep", str(tiny), "--out", str(out), "--workers", "2", "--quiet"]) == 0
    assert "2 local processes" in capsys.readouterr().out
    same(table(out), table(reference))


def test_dask_local_cluster_gives_the_same_table(tiny, reference, tmp_path, capsys):
    out = tmp_path / "dask"
    argv = ["sweep", str(tiny), "--out", str(out), "--scheduler", "local", "--workers", "2"]
    assert main([*argv, "--quiet", "--no-report"]) == 0
    assert "Dask LocalCluster of 2 processes" in capsys.readouterr().out
    same(table(out), table(reference))


def test_a_failing_run_is_recorded_and_the_sweep_goes_on(
    tiny, reference, tmp_path, monkeypatch, capsys
):
    real = sim.sweep._simulate

    def flaky(task):
        if task.point_id == 2 and task.seed == 1:
            raise FloatingPointError("the market blew up")
        return real(task)

    monkeypatch.setattr(sim.sweep, "_simulate", flaky)
    out = tmp_path / "fail"
    assert (
        main(["sweep", str(tiny), "--out", str(out), "--workers", "1", "--quiet", "--no-report"])
        == 1
    )
    printed = capsys.readouterr().out
    assert "1 failed" in printed and "the market blew up" in printed
    df = table(out)
    bad = df[df["status"] == "failed"]
    assert bad[["point_id", "seed"]].values.tolist() == [[2, 1]]
    assert bad["error"].iloc[0].startswith("FloatingPointError: the market blew up")
    assert bad["roi_by_type.developer"].isna().all()
    ok = df[df["status"] == "ok"].drop(columns=["error"])
    ref = table(reference)
    ref = ref[~((ref["point_id"] == 2) & (ref["seed"] == 1))].drop(columns=["error"])
    # int metrics of a table with a failed row (nulls) read back as floats
    same(ok.reset_index(drop=True), ref.reset_index(drop=True), dtypes=False)
    runs = load_runs(out)
    summary = summarize_points(runs, ["roi_by_type.developer"])
    assert summary.set_index("point_id").loc[2, "failed"] == 1
    assert summary.set_index("point_id").loc[2, "n"] == 1


def test_stopped_sweep_resumes_without_duplicates(tiny, reference, tmp_path, capsys):
    out = tmp_path / "partial"
    argv = ["sweep", str(tiny), "--out", str(out), "--workers", "1", "--quiet", "--no-report"]
    assert main([*argv, "--max-runs", "3", "--part-rows", "2"]) == 0
    assert "5 runs to go" in capsys.readouterr().out
    assert len(table(out)) == 3
    assert main(argv) == 2  # a fresh sweep into a used folder is refused
    assert "not empty" in capsys.readouterr().err
    assert main([*argv, "--resume"]) == 0
    assert "3 runs were already done" in capsys.readouterr().out
    same(table(out), table(reference))
    assert main([*argv, "--resume"]) == 0  # nothing left: runs nothing
    assert "ran 0" in capsys.readouterr().out
    same(table(out), table(reference))


def test_resume_refuses_a_different_sweep(tiny, reference, tmp_path, capsys):
    out = tmp_path / "copy"
    shutil.copytree(reference, out)
    changed = write(tmp_path / "changed.yaml", {**TINY, "seeds": 3})
    assert (
        main(["sweep", str(changed), "--out", str(out), "--resume", "--quiet", "--no-report"]) == 2
    )
    err = capsys.readouterr().err
    assert "differs" in err and "at seeds" in err and err.count("\n") == 1


def test_two_sweeps_never_write_into_one_folder(tiny, reference, tmp_path, capsys):
    out = tmp_path / "busy"
    shutil.copytree(reference, out)
    with sim.sweep._locked(out):  # as a running sweep holds it
        assert (
            main(["sweep", str(tiny), "--out", str(out), "--resume", "--quiet", "--no-report"]) == 2
        )
        assert "another sweep is writing there" in capsys.readouterr().err
    assert main(["sweep", str(tiny), "--out", str(out), "--resume", "--quiet", "--no-report"]) == 0


def test_half_written_part_is_detected_and_redone(tiny, reference, tmp_path, capsys):
    out = tmp_path / "torn"
    shutil.copytree(reference, out)
    part = out / "runs.parquet" / "part-00000.parquet"
    data = part.read_bytes()
    part.write_bytes(data[: len(data) // 2])  # a power cut mid-write
    (out / "runs.parquet" / ".part-00001.parquet.tmp").write_bytes(data[:100])
    assert main(["sweep", str(tiny), "--out", str(out), "--resume", "--quiet", "--no-report"]) == 0
    captured = capsys.readouterr()
    assert "part-00000.parquet" in captured.err and "redone" in captured.err
    assert "ran 8" in captured.out
    same(table(out), table(reference))
    hidden = sorted(p.name for p in (out / "runs.parquet").iterdir() if p.name.startswith("."))
    assert hidden == [".part-00000.parquet.broken"]


def test_sigkill_of_the_process_group_then_resume(tmp_path, capsys):
    spec = write(tmp_path / "longer.yaml", {**TINY, "seeds": 5})  # 20 runs
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "sim.cli", "sweep", str(spec), "--out", str(out)]
    proc = subprocess.Popen(
        [*cmd, "--workers", "2", "--part-rows", "1", "--quiet", "--no-report"],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    parts = out / "runs.parquet"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if parts.is_dir() and len(list(parts.glob("part-*.parquet"))) >= 2:
                break
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read().decode()
        os.killpg(proc.pid, signal.SIGKILL)  # the main process and its workers
    finally:
        proc.wait(timeout=30)
        proc.stderr.close()
    before = table(out)
    assert 2 <= len(before) < 20
    assert (
        main(
            [
                "sweep",
                str(spec),
                "--out",
                str(out),
                "--resume",
                "--quiet",
                "--no-report",
                "--workers",
                "1",
            ]
        )
        == 0
    )
    after = table(out)
    assert len(after) == 20 and not after.duplicated(["point_id", "seed"]).any()
    fresh = tmp_path / "fresh"
    run_sweep(load_sweep(spec), fresh, workers=1)
    same(after, table(fresh))


def test_metrics_and_per_run_tables(tmp_path):
    spec = write(
        tmp_path / "m.yaml",
        {
            **TINY,
            "vary": {"population.free_riders.count": [0, 2]},
            "seeds": 1,
            "metrics": ["metamodel.mean_corr", "roi_by_type"],
            "tables": True,
        },
    )
    out = tmp_path / "m"
    assert main(["sweep", str(spec), "--out", str(out), "--quiet", "--no-report"]) == 0
    df = load_runs(out)
    metrics = [c for c in df.columns if c not in df.attrs["parameters"]]
    fixed = {"point_id", "seed", "run_seed", "status", "error", "wall_s", "cpu_s"}
    assert set(metrics) - fixed == {
        "metamodel.mean_corr",
        "roi_by_type.provider",
        "roi_by_type.developer",
        "roi_by_type.free_rider",
    }
    assert df.attrs["parameters"] == ["population.free_riders.count"]
    run_dirs = sorted(p.name for p in (out / "tables").iterdir())
    assert run_dirs == ["point-00000-seed-000", "point-00001-seed-000"]
    assert (out / "tables" / run_dirs[1] / "model.parquet").is_file()
    imp = sensitivity(df, "roi_by_type.developer")
    assert imp["parameter"].tolist()[0] in ("population.free_riders.count", "seed")


def crash_at_point_1(task):
    """Kill the worker process running point 1, seed 0 (imported by the workers)."""
    if task.point_id == 1 and task.seed == 0:
        os._exit(3)
    return sim.sweep.run_task(task)


def test_a_lost_worker_is_found_recorded_and_the_others_rerun(
    tiny, reference, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(sim.sweep, "run_task", crash_at_point_1)
    out = tmp_path / "lost"
    assert (
        main(["sweep", str(tiny), "--out", str(out), "--workers", "2", "--quiet", "--no-report"])
        == 1
    )
    assert "WorkerLost" in capsys.readouterr().out
    df = table(out)
    assert len(df) == 8 and not df.duplicated(["point_id", "seed"]).any()
    bad = df[df["status"] == "failed"]
    assert bad[["point_id", "seed"]].values.tolist() == [[1, 0]]
    ref = table(reference)
    keep = ~((ref["point_id"] == 1) & (ref["seed"] == 0))
    ok = df[df["status"] == "ok"].drop(columns=["error"]).reset_index(drop=True)
    same(ok, ref[keep].drop(columns=["error"]).reset_index(drop=True), dtypes=False)


def test_sigterm_saves_finished_runs_then_resume(tmp_path, capsys):
    spec = write(tmp_path / "longer.yaml", {**TINY, "seeds": 5})
    out = tmp_path / "term"
    cmd = [sys.executable, "-m", "sim.cli", "sweep", str(spec), "--out", str(out)]
    proc = subprocess.Popen(
        [*cmd, "--workers", "1", "--part-rows", "2", "--quiet", "--no-report"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    parts = out / "runs.parquet"
    while time.monotonic() < deadline and proc.poll() is None:
        if parts.is_dir() and any(parts.glob("part-*.parquet")):
            break
        time.sleep(0.02)
    time.sleep(0.15)  # perhaps a run in the buffer, which the stop writes
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 130
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert "interrupted" in err and "--resume" in err
    saved = len(table(out))
    assert 2 <= saved < 20
    assert main([*cmd[3:], "--resume", "--quiet", "--no-report", "--workers", "1"]) == 0
    assert f"{saved} runs were already done" in capsys.readouterr().out
    assert len(table(out)) == 20
