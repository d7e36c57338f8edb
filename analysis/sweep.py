"""Reading a sweep folder: runs, per-point means with confidence intervals, sensitivity.

>>> from analysis.sweep import load_runs, summarize_points, sensitivity
>>> runs = load_runs("runs/my-sweep")                 # one row per (point_id, seed)
>>> table = summarize_points(runs, ["metamodel.mean_corr"])
>>> sensitivity(runs, "metamodel.mean_corr")          # which parameters matter

``load_runs`` reads ``DIR/runs.parquet`` (every complete part; temporary files are
ignored) and records the parameter columns and the design in ``DataFrame.attrs``, which
the other functions use when their ``params`` argument is not given.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from scipy import stats

ID_COLUMNS = ("point_id", "seed", "run_seed")
STATUS_COLUMNS = ("status", "error", "wall_s", "cpu_s")


def _parts(path: Path) -> list[Path]:
    runs = path / "runs.parquet" if (path / "runs.parquet").exists() else path
    if runs.is_file():
        return [runs]
    if not runs.is_dir():
        raise FileNotFoundError(f"{path}: no runs.parquet (is it a sweep folder?)")
    return sorted(p for p in runs.glob("part-*.parquet") if not p.name.startswith("."))


def load_runs(path: str | Path) -> pd.DataFrame:
    """Every recorded run of a sweep folder (or of its ``runs.parquet``), one row each.

    Parts are read one by one and stacked, so a metric missing from some parts (a
    summary section that only some points have) is a column of NaN there. Rows are
    sorted by ``point_id`` and ``seed``. ``attrs["parameters"]`` lists the parameter
    columns; ``attrs["design"]``, ``attrs["points"]`` and ``attrs["seeds"]`` come from
    ``sweep.yaml`` when it is there.
    """
    import pyarrow.parquet as pq

    path = Path(path)
    frames = [pq.read_table(p).to_pandas() for p in _parts(path)]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=[*ID_COLUMNS, *STATUS_COLUMNS])
    df = pd.concat(frames, ignore_index=True, sort=False)
    dup = df.duplicated(["point_id", "seed"])
    if dup.any():
        warnings.warn(
            f"{path}: {int(dup.sum())} runs appear twice; the first of each is kept",
            stacklevel=2,
        )
        df = df[~dup]
    df = df.sort_values(["point_id", "seed"], kind="stable").reset_index(drop=True)
    folder = path if (path / "runs.parquet").exists() else path.parent
    df.attrs["parameters"] = _parameters_of(df, folder)
    spec = folder / "sweep.yaml"
    if spec.is_file():
        data = yaml.safe_load(spec.read_text(encoding="utf-8")) or {}
        for k in ("design", "points", "seeds"):
            if k in data:
                df.attrs[k] = data[k]
    return df


def _parameters_of(df: pd.DataFrame, folder: Path) -> list[str]:
    points = folder / "points.parquet"
    if points.is_file():
        import pyarrow.parquet as pq

        names = pq.read_schema(points).names
        return [c for c in names if c != "point_id" and c in df.columns]
    cols = list(df.columns)  # the parameters sit between run_seed and status
    if "run_seed" in cols and "status" in cols:
        return cols[cols.index("run_seed") + 1 : cols.index("status")]
    return []


def parameters(df: pd.DataFrame, params: Sequence[str] | None = None) -> list[str]:
    """``params``, else the parameter columns :func:`load_runs` recorded."""
    if params is not None:
        return list(params)
    return list(df.attrs.get("parameters", []))


def metric_columns(df: pd.DataFrame, params: Sequence[str] | None = None) -> list[str]:
    """The numeric (and boolean) metric columns: everything but ids, status and parameters."""
    skip = {*ID_COLUMNS, *STATUS_COLUMNS, *parameters(df, params)}
    return [
        c
        for c in df.columns
        if c not in skip
        and (pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c]))
    ]


def summarize_points(
    df: pd.DataFrame,
    metrics: Sequence[str] | None = None,
    confidence: float = 0.95,
    params: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Mean, standard deviation and confidence interval of each metric at each point.

    One row per (point, metric): the point's parameters, ``n`` (runs with a value),
    ``failed`` (runs that failed at that point), ``mean``, ``std`` (ddof 1) and the
    Student-t interval ``mean -/+ t_{(1+confidence)/2, n-1} * std / sqrt(n)``
    (``ci_low``, ``ci_high``; NaN when n < 2). Failed runs are left out of the numbers.
    """
    params = parameters(df, params)
    metrics = list(metrics) if metrics is not None else metric_columns(df, params)
    missing = [m for m in metrics if m not in df.columns]
    if missing:
        raise KeyError(f"no metric {missing[0]!r} in the runs")
    points = df.groupby("point_id", sort=True)[params].first() if params else None
    failed = (df["status"] == "failed").groupby(df["point_id"]).sum()
    ok = df[df["status"] == "ok"]
    values = ok[metrics].astype(float)
    g = values.groupby(ok["point_id"], sort=True)
    stacked = {
        "n": g.count().stack(future_stack=True),
        "mean": g.mean().stack(future_stack=True),
        "std": g.std(ddof=1).stack(future_stack=True),
    }
    out = pd.DataFrame(stacked)
    out.index = out.index.set_names(["point_id", "metric"])
    out = out.reset_index()
    n = out["n"].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(n > 1, stats.t.ppf((1 + confidence) / 2, np.maximum(n - 1, 1)), np.nan)
        half = t * out["std"].to_numpy() / np.sqrt(n)
    out["ci_low"] = out["mean"] - half
    out["ci_high"] = out["mean"] + half
    out["n"] = out["n"].astype(int)
    out.insert(2, "failed", out["point_id"].map(failed).fillna(0).astype(int))
    if points is not None:
        out = out.merge(points.reset_index(), on="point_id", how="left")
        out = out[
            ["point_id", *params, *[c for c in out.columns if c not in params and c != "point_id"]]
        ]
    return out.sort_values(["point_id", "metric"], kind="stable").reset_index(drop=True)


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def eta_squared_ranks(ranks: np.ndarray, groups: np.ndarray) -> float:
    """Share of the rank variance between groups: ``SS_between / SS_total`` of ``ranks``.

    The effect size of a one-way ANOVA on ranks; it equals the tie-corrected
    Kruskal-Wallis ``H / (N - 1)`` (Kruskal & Wallis 1952; Tomczak & Tomczak 2014,
    "The need to report effect size estimates revisited", Trends in Sport Sciences).
    """
    ranks = np.asarray(ranks, float)
    total = float(((ranks - ranks.mean()) ** 2).sum())
    if total == 0:
        return float("nan")
    frame = pd.DataFrame({"r": ranks, "g": groups})
    by = frame.groupby("g", sort=False)["r"].agg(["mean", "size"])
    between = float((by["size"] * (by["mean"] - ranks.mean()) ** 2).sum())
    return between / total


def sensitivity(
    df: pd.DataFrame, metric: str, params: Sequence[str] | None = None, seeds: bool = True
) -> pd.DataFrame:
    """Rank-based importance of each parameter for ``metric``, over every ok run.

    A numeric parameter gets Spearman's rank correlation ``rho`` with the metric
    (Spearman 1904) and importance ``rho**2``; a categorical one (strings, booleans)
    gets ``eta_squared`` of a one-way ANOVA on the metric's ranks
    (:func:`eta_squared_ranks`) with the Kruskal-Wallis p-value. Both importances are
    shares of the metric's rank variance explained by the parameter alone, so they can
    be compared. With ``seeds`` a row ``seed`` says how much the seed index (the
    common random numbers) explains: the noise between runs. Sorted by importance.
    """
    params = parameters(df, params)
    ok = df[(df["status"] == "ok") & df[metric].notna()]
    y = ok[metric].astype(float).to_numpy()
    ranks = stats.rankdata(y)
    rows: list[dict[str, Any]] = []
    factors = [*params, *(["seed"] if seeds else [])]
    for p in factors:
        x = ok[p]
        row = {"parameter": p, "n": len(ok)}
        if x.nunique(dropna=True) < 2 or len(ok) < 3:
            rows.append({**row, "kind": "constant", "method": None})
            continue
        if _is_numeric(x) and p != "seed":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a constant metric: rho is NaN
                rho, pval = stats.spearmanr(x.to_numpy(float), y)
            rows.append(
                {
                    **row,
                    "kind": "numeric",
                    "method": "spearman",
                    "statistic": float(rho),
                    "importance": float(rho) ** 2,
                    "p_value": float(pval),
                }
            )
        else:
            groups = x.astype(str).to_numpy()
            eta = eta_squared_ranks(ranks, groups)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    pval = stats.kruskal(*[y[groups == g] for g in np.unique(groups)]).pvalue
                except ValueError:  # every value identical
                    pval = float("nan")
            rows.append(
                {
                    **row,
                    "kind": "seed" if p == "seed" else "categorical",
                    "method": "eta_squared_ranks",
                    "statistic": eta,
                    "importance": eta,
                    "p_value": float(pval),
                }
            )
    cols = ["parameter", "kind", "method", "statistic", "importance", "p_value", "n"]
    out = pd.DataFrame(rows).reindex(columns=cols)
    return out.sort_values("importance", ascending=False, na_position="last").reset_index(drop=True)


def sobol_indices(
    df: pd.DataFrame,
    metric: str,
    params: Sequence[str] | None = None,
    points: int | None = None,
    bootstrap: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """First-order and total Sobol' indices of ``metric`` from a ``saltelli`` sweep.

    The points come in blocks A, B, AB_1..AB_D of N rows each (``sim.sweep``); f is
    the metric's mean over a point's seeds. With V the variance of f over A and B:

        S1_i = mean(f(B) * (f(AB_i) - f(A))) / V          (Saltelli et al. 2010, Table 2 b)
        ST_i = mean((f(A) - f(AB_i))**2) / (2 V)          (Jansen 1999; ibid., Table 2 f)

    Saltelli, Annoni, Azzini, Campolongo, Ratto & Tarantola (2010), "Variance based
    sensitivity analysis of model output. Design and estimator for the total
    sensitivity index", Computer Physics Communications 181, 259-270. Intervals are
    bootstrap percentiles over the N rows (``bootstrap`` resamples). Rows of the
    blocks where a run failed everywhere are dropped.
    """
    params = parameters(df, params)
    d = len(params)
    n = int(points if points is not None else df.attrs.get("points", 0))
    if df.attrs.get("design", "saltelli") != "saltelli" or n <= 0:
        raise ValueError("Sobol' indices need a sweep with design: saltelli (and its points)")
    ok = df[df["status"] == "ok"]
    f = ok.groupby("point_id")[metric].mean().reindex(range(n * (d + 2))).to_numpy(float)
    blocks = f.reshape(d + 2, n)
    keep = ~np.isnan(blocks).any(axis=0)
    blocks = blocks[:, keep]
    a, b, ab = blocks[0], blocks[1], blocks[2:]

    def estimate(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        fa, fb, fab = a[idx], b[idx], ab[:, idx]
        v = np.var(np.concatenate([fa, fb]), ddof=1)
        if not v > 0:
            return np.full(d, np.nan), np.full(d, np.nan)
        s1 = np.mean(fb * (fab - fa), axis=1) / v
        st = 0.5 * np.mean((fa - fab) ** 2, axis=1) / v
        return s1, st

    m = a.size
    s1, st = estimate(np.arange(m))
    rng = np.random.default_rng(seed)
    boots = [estimate(rng.integers(0, m, m)) for _ in range(bootstrap)] if m else []
    q = [(1 - confidence) / 2 * 100, (1 + confidence) / 2 * 100]
    if boots:
        b1 = np.nanpercentile(np.array([x[0] for x in boots]), q, axis=0)
        bt = np.nanpercentile(np.array([x[1] for x in boots]), q, axis=0)
    else:
        b1 = bt = np.full((2, d), np.nan)
    return pd.DataFrame(
        {
            "parameter": params,
            "S1": s1,
            "S1_low": b1[0],
            "S1_high": b1[1],
            "ST": st,
            "ST_low": bt[0],
            "ST_high": bt[1],
            "n": m,
        }
    )
