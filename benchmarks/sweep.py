"""Throughput of ``mlmarket sweep``: 1 and 2 local workers, and Dask against local processes.

Plain Python: ``python benchmarks/sweep.py [--rounds 10] [--runs 96] [--repeat 2]``.
Each row runs one sweep of short runs of the ``small`` scenario through
:func:`sim.sweep.run_sweep` (the code path of the command line: dispatch, Parquet parts
and all) and notes when each run's row arrives. The steady rate counts the rows after
the first ``2 x workers`` (which carry the start-up: worker processes importing the
simulator, a LocalCluster starting) over the time they took; start-up is the time to
the first row. With ``--repeat`` the best rate of the repeats is kept (other processes
on the machine only ever slow a sweep down). Parallel efficiency is the 2-worker rate
over twice the 1-worker rate (1 worker runs in the sweep's own process); the Dask
overhead per run is ``1 / rate(Dask) - 1 / rate(local)`` at the same number of
processes (1 and 2). ``CPU s/run`` is the median CPU time of a run in its worker
(``cpu_s``): when ``s/run`` x workers is well above it, something else had the cores
(the load average is printed). The in-process worker's CPU per run can differ from a
fresh worker process's (its heap holds the sweep's own objects), so efficiency is also
given against the 2 workers' own CPU per run. Numbers for comparing side by side on one machine, not
assertions.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from sim.sweep import load_sweep, run_sweep

CONFIGS = {
    "local, 1 worker (in-process)": (1, None),
    "local, 2 worker processes": (2, None),
    "Dask LocalCluster, 1 process": (1, "local"),
    "Dask LocalCluster, 2 processes": (2, "local"),
}


def sweep(rounds: int, runs: int):
    points = 8
    return load_sweep(
        {
            "base": "small",
            "overrides": {"run.rounds": rounds},
            "vary": {"population.free_riders.count": list(range(points))},
            "seeds": max(1, runs // points),
        }
    )


def measure(spec, workers: int, scheduler: str | None, out: Path) -> dict[str, float]:
    stamps: list[float] = []
    cpu: list[float] = []
    t0 = time.perf_counter()
    outcome = run_sweep(
        spec,
        out,
        workers=workers,
        scheduler=scheduler,
        on_row=lambda row: (stamps.append(time.perf_counter()), cpu.append(row["cpu_s"])),
    )
    assert outcome.complete and outcome.failed == 0, outcome
    skip = 2 * workers
    rate = (len(stamps) - skip) / (stamps[-1] - stamps[skip - 1])
    return {
        "runs/s": rate,
        "startup_s": stamps[0] - t0,
        "cpu_s": float(np.median(cpu[skip:])),
        "wall_s": time.perf_counter() - t0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=10, help="rounds per run (default 10)")
    ap.add_argument("--runs", type=int, default=96, help="runs per sweep (default 96)")
    ap.add_argument("--repeat", type=int, default=2, help="repeats; the best is kept")
    args = ap.parse_args()
    spec = sweep(args.rounds, args.runs)
    best: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        measure(sweep(args.rounds, 8), 1, None, root / "warm-up")  # imports in this process
        for rep in range(args.repeat):
            for i, (name, (workers, scheduler)) in enumerate(CONFIGS.items()):
                r = measure(spec, workers, scheduler, root / f"{rep}-{i}")
                if name not in best or r["runs/s"] > best[name]["runs/s"]:
                    best[name] = r
    load = os.getloadavg()[1] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"sweep of {spec.n_runs} runs of `small` ({args.rounds} rounds each); best of "
        f"{args.repeat}; {os.cpu_count()} cores, load average {load:.2f} over the last 5 min"
    )
    print(f"{'executor':<34} {'runs/s':>8} {'s/run':>8} {'CPU s/run':>10} {'start-up s':>11}")
    for name, r in best.items():
        print(
            f"{name:<34} {r['runs/s']:>8.2f} {1 / r['runs/s']:>8.3f} {r['cpu_s']:>10.3f} "
            f"{r['startup_s']:>11.2f}"
        )
    rate = {k: v["runs/s"] for k, v in best.items()}
    one, two = rate["local, 1 worker (in-process)"], rate["local, 2 worker processes"]
    print(f"parallel efficiency on 2 workers: {two / (2 * one):.2f} (speed-up {two / one:.2f}x)")
    cpu2 = best["local, 2 worker processes"]["cpu_s"]
    print(
        f"  against the workers' own CPU per run ({cpu2:.3f} s, so at most "
        f"{2 / cpu2:.2f} runs/s): {two * cpu2 / 2:.2f}"
    )
    for n, local in ((1, one), (2, two)):
        dask = rate[f"Dask LocalCluster, {n} process{'es' if n > 1 else ''}"]
        print(
            f"Dask overhead per run vs local, {n} worker{'s' if n > 1 else ''}: "
            f"{1e3 * (1 / dask - 1 / local):+.1f} ms"
        )
    print(
        "(with as many workers as cores, Dask's scheduler, nannies and heartbeats share "
        "the cores with the runs)"
    )


if __name__ == "__main__":
    main()
