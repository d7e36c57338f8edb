"""Running a scenario: the Python API behind ``mlmarket run``.

>>> from sim import load_scenario, run
>>> sc = load_scenario("baseline", ["run.rounds=20", "population.free_riders.count=5"])
>>> result = run(sc)                      # nothing touches the disk
>>> result.model.tail()                   # pandas DataFrames: model, agents, ledger
>>> result.summary["roi_by_type"]
>>> result.write("runs/demo")             # the same files ``mlmarket run`` writes
"""

from __future__ import annotations

import json
import math
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from agents.base import STRATEGIES
from sim.config import Scenario, ScenarioError, load_scenario
from sim.model import AGENT_TYPES, MarketModel

DEPENDENCIES = (
    "mesa",
    "numpy",
    "scipy",
    "pandas",
    "networkx",
    "pyyaml",
    "matplotlib",
    "pyarrow",
    "pydantic",
    "tqdm",
)


class OutputError(ScenarioError):
    """The output folder cannot be used."""


@dataclass
class RunResult:
    """Everything a run produced, in memory."""

    scenario: Scenario
    model: pd.DataFrame
    agents: pd.DataFrame
    ledger: pd.DataFrame
    summary: dict[str, Any]
    provenance: dict[str, Any] = field(default_factory=dict)

    def write(self, out: str | Path) -> Path:
        """Write the run's folder: scenario, provenance, tables (Parquet) and summary."""
        out = prepare_output(out)
        (out / "scenario.yaml").write_text(self.scenario.to_yaml(), encoding="utf-8")
        (out / "provenance.json").write_text(json.dumps(self.provenance, indent=2) + "\n")
        # the three tables at once (Parquet encoding releases the GIL); dictionary
        # encoding only where values repeat (categories, account names), not on floats
        tables = {"model": self.model, "agents": self.agents, "ledger": self.ledger}
        with ThreadPoolExecutor(max_workers=len(tables)) as pool:
            done = [
                pool.submit(_write_parquet, df, out / f"{name}.parquet")
                for name, df in tables.items()
            ]
            for f in done:
                f.result()
        (out / "summary.json").write_text(json.dumps(self.summary, indent=2) + "\n")
        return out


def _write_parquet(df: pd.DataFrame, path: Path) -> None:
    """One table as Parquet, dictionary-encoding only its categorical and text columns.

    Min/max statistics (what a reader filters row groups by) are left out for the
    categorical columns: for those Arrow's writer finds the distinct codes of every
    batch of 1,024 rows and looks their names up to update the minimum and maximum,
    two thirds of the ledger's writing time, for an alphabetical range of account or
    reason names that no reader filters by. The data read back is the same.
    """
    repeat = [
        c
        for c in df.columns
        if isinstance(df[c].dtype, pd.CategoricalDtype)
        or df[c].dtype.kind in "OUT"
        or str(df[c].dtype) == "str"
    ]
    stats = [c for c in df.columns if not isinstance(df[c].dtype, pd.CategoricalDtype)]
    df.to_parquet(path, index=False, use_dictionary=repeat, write_statistics=stats)


def prepare_output(out: str | Path) -> Path:
    """Create ``out`` (and parents) and prove it is writable, or raise :class:`OutputError`."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise OutputError(f"output folder {str(out)!r} is not writable: {e.strerror}") from None
    return out


def blas_single_thread():
    """Context limiting BLAS to one thread for the duration of a run.

    A round's matrices are small (tens to a few thousand columns), where OpenBLAS's
    threads cost more than they give, and many times more on a busy machine; runs are
    parallelized by processes instead (sweeps).
    """
    return threadpool_limits(limits=1, user_api="blas")


def run(
    scenario: Scenario | str = "baseline",
    overrides: Any = (),
    progress: Callable[[int, int], None] | None = None,
) -> RunResult:
    """Run a scenario (a :class:`Scenario`, or a name/path loaded with ``overrides``)."""
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario, overrides)
    elif overrides:
        raise ValueError("overrides apply when loading; pass a scenario name or path instead")
    t0 = time.perf_counter()
    with blas_single_thread():
        model = MarketModel(scenario)
        rounds = scenario.run.rounds
        for t in range(rounds):
            model.step()
            if progress is not None:
                progress(t + 1, rounds)
    wall = time.perf_counter() - t0
    return collect(model, wall)


def without_adversaries(scenario: Scenario) -> Scenario:
    """The same scenario (and seed) with every adversary switched off (``ADVERSARY_OFF``)."""
    return load_scenario(scenario.to_dict(), [*ADVERSARY_OFF, "run.counterfactual=false"])


def counterfactual(scenario: Scenario, summary: dict[str, Any]) -> dict[str, Any]:
    """Rerun without adversaries under the same seed; their damage is the difference.

    ``damage.metamodel_mean_corr``: the metamodel's mean score lost to the adversaries;
    ``damage.honest_payoff_usd``: honest participants' total payoff (final wealth minus
    capital) lost. Population draws after the removed agents differ between the two
    runs (same seed, fewer agents), so the difference is a paired estimate, not exact.
    """
    base = run(without_adversaries(scenario)).summary
    mine, theirs = summary["honest"], base["honest"]
    return {
        "metamodel_mean_corr": base["metamodel"]["mean_corr"],
        "honest": theirs,
        "damage": {
            "metamodel_mean_corr": base["metamodel"]["mean_corr"]
            - summary["metamodel"]["mean_corr"],
            "honest_payoff_usd": theirs["payoff_usd"] - mine["payoff_usd"],
        },
    }


#: Overrides that remove every adversary from a scenario: the counterfactual market
#: that ``run.counterfactual`` compares against under the same seed. Each adversary
#: feature adds the keys that switch it off.
ADVERSARY_OFF: list[str] = [
    "population.free_riders.count=0",
    "population.developers.lazy_fraction=0.0",
    # the collusion ring and the whales (whales are investor-type agents, strategy
    # "whale": AGENT_TYPES is unchanged)
    "population.collusion.providers=0",
    "population.collusion.developers=0",
    "population.whales.count=0",
    "population.sybils.owners=0",  # the sybil groups are removed, not merged back
    # bad-data providers become honest ones (the same number of providers)
    "population.providers.bad.noise=0.0",
    "population.providers.bad.flipped=0.0",
    "population.providers.bad.stale=0.0",
    "population.providers.bad.resold=0.0",
]


def collect(model: MarketModel, wall: float = 0.0) -> RunResult:
    """Tables and summary of a finished model."""
    sc = model.config
    # the ledger's table is built on a second thread while this one builds the others:
    # both are mostly copies of large arrays, which NumPy makes without holding the GIL.
    # The summary waits for it: it reads the ledger's columns, which the first reader
    # merges in place.
    with ThreadPoolExecutor(max_workers=1) as pool:
        ledger_job = pool.submit(model.ledger.to_frame)
        model_df = pd.DataFrame(model.model_rows)
        agents_df = agent_table(model)
        prov = provenance(sc)
        ledger_df = ledger_job.result()
    summary = summarize(model, model_df, agents_df)
    if sc.run.counterfactual:  # the same market without its adversaries, same seed
        summary["counterfactual"] = counterfactual(sc, summary)
    prov["timing"] = {
        "wall_seconds": round(wall, 3),
        "phase_seconds": {k: round(v, 4) for k, v in model.phase_seconds.items()},
        # the window Gram update, which runs beside the phases when threads > 1
        "gram_seconds": {k: round(v, 4) for k, v in model.gram_seconds.items()},
    }
    return RunResult(sc, model_df, agents_df, ledger_df, summary, prov)


def agent_table(model: MarketModel) -> pd.DataFrame:
    """One row per agent per round (round 0 = genesis), with ledger account names."""
    chunks = model.agent_chunks
    if not chunks:
        return pd.DataFrame()
    if len(chunks) > 1:  # merge the rounds' rows once, freeing each column's pieces as we go
        merged = {}
        for key in list(chunks[0]):
            merged[key] = np.concatenate([c[key] for c in chunks])
            for c in chunks:
                del c[key]
        model.agent_chunks = chunks = [merged]
    df = pd.DataFrame(chunks[0], copy=False)
    codes = df["type"].to_numpy()
    df["type"] = pd.Categorical.from_codes(codes, categories=list(AGENT_TYPES))
    if "strategy" in df:
        df["strategy"] = pd.Categorical.from_codes(df["strategy"], categories=list(STRATEGIES))
    df.insert(0, "round", df.pop("round"))
    df.insert(2, "type", df.pop("type"))
    # "type:id", formed once per agent rather than once per row (hashing the ids with
    # factorize is several times faster than sorting them with np.unique) and kept as
    # a categorical column, as the ledger's account columns are: one code per row
    # instead of a string, which is what Parquet stores anyway (dictionary encoding).
    # An agent's type never changes, so any of its rows gives it.
    rows, ids = pd.factorize(df["id"].to_numpy())
    kind = np.empty(len(ids), np.int8)
    kind[rows] = codes
    names = [f"{AGENT_TYPES[t]}:{i}" for t, i in zip(kind.tolist(), ids.tolist(), strict=True)]
    df.insert(3, "account", pd.Categorical.from_codes(rows, categories=names))
    return df


def _finite(x: float) -> float:
    return float(x) if math.isfinite(x) else 0.0


def summarize(
    model: MarketModel, model_df: pd.DataFrame, agents_df: pd.DataFrame | None = None
) -> dict[str, Any]:
    """The run's headline numbers (``summary.json``)."""
    L = model.ledger
    sc = model.config
    rounds = len(model_df)
    wealth = model.final_wealth()
    roi, counts = {}, {}
    for kind in AGENT_TYPES:
        w, cap = wealth[kind]
        counts[kind] = int(w.size)
        if w.size == 0:
            continue
        ok = cap > 0
        roi[kind] = _finite(float(np.mean(w[ok] / cap[ok] - 1.0))) if ok.any() else 0.0
    corr = model_df["metamodel_corr"].dropna() if rounds else pd.Series(dtype=float)
    last = model_df.iloc[-1] if rounds else None
    return {
        "scenario": sc.run.model_dump(),
        "seed": sc.run.seed,
        "rounds": rounds,
        "roi_by_type": roi,
        "agents_by_type": counts,
        "active_at_end": {
            k: int(last[f"active_{k}"]) if last is not None else counts[k] for k in AGENT_TYPES
        },
        "metamodel": {
            "mean_corr": _finite(float(corr.mean())) if len(corr) else 0.0,
            "resolved_rounds": int(len(corr)),
            "total_pnl": float(model_df["metamodel_pnl"].sum()) if rounds else 0.0,
        },
        "tokens": {
            "supply_start": model.supply_start,
            "minted": L.minted("token", slice(1, None)),
            "burned": L.burned("token", slice(1, None)),
            "supply_end": L.supply("token"),
            "price_start": model.config.market.exchange.token_price,
            "price_end": model.token_price,
        },
        "flows": {
            "data_sales": float(model_df["data_sales"].sum()) if rounds else 0.0,
            "payouts": float(model_df["payouts"].sum()) if rounds else 0.0,
            "slashed": float(model_df["slashed"].sum()) if rounds else 0.0,
            "leaks": int(model_df["leaks"].sum()) if rounds else 0,
        },
        "secure_compute": _secure_compute(model, model_df, agents_df),
        **_by_strategy(model, agents_df),
        **_sybil_summary(model, agents_df),
        "mechanisms": {f: c.name for f, c in sc.mechanisms.items()},
        "invariants_ok": True,
    }


def _by_strategy(model: MarketModel, agents_df: pd.DataFrame | None) -> dict[str, Any]:
    """Outcomes per (type, strategy), the honest and adversarial totals, and the transfer.

    ``by_strategy["TYPE/STRATEGY"]``: agents, mean and median return on capital, total
    payout (rewards, tokens), tokens burned from them, total payoff (usd). Adversaries
    are free riders and every agent whose strategy is not ``honest``.
    ``adversaries.transfer_tokens``: tokens that moved, net, from honest participants and
    the shared accounts (treasury, escrow, jackpot, curation, verifiers) into
    adversaries' accounts (exchange trades, minting, burning and fees excluded).
    """
    table = model.outcome_table()
    if agents_df is not None and len(agents_df):
        # by id alone (ids are unique across types): half the time of grouping by
        # (type, id), and each agent's rows are summed in the same order
        sums = agents_df.groupby("id")[["payout", "burned"]].sum()
        got = sums.reindex(table["id"].to_numpy())
        table["payout"] = got["payout"].fillna(0.0).to_numpy()
        table["burned"] = got["burned"].fillna(0.0).to_numpy()
    else:
        table["payout"] = 0.0
        table["burned"] = 0.0
    ok = table["capital"] > 0
    table["roi"] = np.where(ok, table["wealth"] / table["capital"].where(ok, 1.0) - 1.0, np.nan)
    table["payoff"] = table["wealth"] - table["capital"]
    out: dict[str, Any] = {}
    for (kind, strategy), g in table.groupby(["type", "strategy"], sort=True):
        roi = g["roi"].dropna()
        out[f"{kind}/{strategy}"] = {
            "agents": int(len(g)),
            "roi_mean": _finite(float(roi.mean())) if len(roi) else 0.0,
            "roi_median": _finite(float(roi.median())) if len(roi) else 0.0,
            "payout": float(g["payout"].sum()),
            "burned": float(g["burned"].sum()),
            "payoff_usd": float(g["payoff"].sum()),
        }

    def block(rows: pd.DataFrame) -> dict[str, Any]:
        roi = rows["roi"].dropna()
        return {
            "agents": int(len(rows)),
            "roi_mean": _finite(float(roi.mean())) if len(roi) else 0.0,
            "payout": float(rows["payout"].sum()),
            "burned": float(rows["burned"].sum()),
            "payoff_usd": float(rows["payoff"].sum()),
        }

    bad = table["adversary"].to_numpy(bool)
    adv = block(table[bad])
    adv["transfer_tokens"] = model.transfer_to_adversaries()
    return {"by_strategy": out, "honest": block(table[~bad]), "adversaries": adv}


def _sybil_summary(model: MarketModel, agents_df: pd.DataFrame | None) -> dict[str, Any]:
    """``{"sybils": ...}``: each sybil group's outcome against honest developers'.

    Present only when ``population.sybils.owners > 0`` (other summaries are unchanged).
    Per group (``groups``, by the owner's agent id): its identities, capital and final
    wealth (usd, summed over identities), payoff = wealth - capital, ``roi`` = payoff /
    capital, and the tokens paid to and burned from it. The undivided baseline is an
    honest developer of the same run: ``honest_developer_roi_mean`` over every honest
    developer (entrants included, as in ``by_strategy``) and
    ``honest_genesis_roi_mean`` over those present from genesis, like the groups;
    ``roi_vs_honest`` = ``roi_mean`` (the groups' mean ROI) minus the latter. Each
    group's capital is one developer's draw, so the two ROIs compare like with like.
    Developers' returns are skewed (a few compound their rewards; the token's price
    moves everyone's), so ``honest_genesis_roi_median`` is given too.
    """
    cfg = model.config.population.sybils
    if cfg.owners <= 0:
        return {}
    F = model.forecasters
    table = model.outcome_table()
    devs = table[table["type"] == "developer"].set_index("id")
    devs = devs.assign(payoff=devs["wealth"] - devs["capital"])
    if agents_df is not None and len(agents_df):
        sums = agents_df[agents_df["type"] == "developer"].groupby("id")[["payout", "burned"]]
        devs = devs.join(sums.sum(), how="left").fillna({"payout": 0.0, "burned": 0.0})
    else:
        devs = devs.assign(payout=0.0, burned=0.0)
    rows = np.flatnonzero(F.owner >= 0)
    members = devs.loc[F.agent_id[rows]].assign(group=F.agent_id[F.owner[rows]])
    groups = []
    for owner, g in members.groupby("group", sort=True):
        capital, wealth = float(g["capital"].sum()), float(g["wealth"].sum())
        groups.append(
            {
                "owner": int(owner),
                "identities": int(len(g)),
                "capital_usd": capital,
                "wealth_usd": wealth,
                "payoff_usd": wealth - capital,
                "roi": _finite(wealth / capital - 1.0) if capital > 0 else 0.0,
                "payout": float(g["payout"].sum()),
                "burned": float(g["burned"].sum()),
            }
        )

    def mean_roi(rows: pd.DataFrame, how: str = "mean") -> float:
        ok = rows[rows["capital"] > 0]
        r = ok["wealth"] / ok["capital"] - 1.0
        return _finite(float(getattr(r, how)())) if len(ok) else 0.0

    honest = devs[devs["strategy"] == "honest"]
    genesis_ids = F.agent_id[(F.entered == 0) & (F.strategy == STRATEGIES.index("honest"))]
    honest_genesis = honest[honest.index.isin(genesis_ids)]
    roi = [g["roi"] for g in groups]
    roi_mean = float(np.mean(roi)) if roi else 0.0
    base = mean_roi(honest_genesis)
    return {
        "sybils": {
            "owners": cfg.owners,
            "identities": cfg.identities,
            "split": cfg.split,
            "roi_mean": roi_mean,
            "payoff_usd": float(sum(g["payoff_usd"] for g in groups)),
            "honest_developer_roi_mean": mean_roi(honest),
            "honest_genesis_roi_mean": base,
            "honest_genesis_roi_median": mean_roi(honest_genesis, "median"),
            "roi_vs_honest": roi_mean - base,
            "groups": groups,
        }
    }


def _secure_compute(
    model: MarketModel, model_df: pd.DataFrame, agents_df: pd.DataFrame | None
) -> dict[str, Any]:
    """What secure training cost developers, and how its latency met the deadline."""
    fees = float(model_df["compute_fees"].sum()) if len(model_df) else 0.0
    spent = 0.0
    if agents_df is not None and len(agents_df):
        spent = float(agents_df.loc[agents_df["type"] == "developer", "spent"].sum())
    lat = model_df["latency_max"].dropna() if len(model_df) else pd.Series(dtype=float)
    mean = model_df["latency_mean"].dropna() if len(model_df) else pd.Series(dtype=float)
    return {
        "fees": fees,
        "share_of_developer_costs": fees / spent if spent > 0 else 0.0,
        "core_seconds": float(model_df["compute_seconds"].sum()) if len(model_df) else 0.0,
        "bytes": float(model_df["compute_bytes"].sum()) if len(model_df) else 0.0,
        "latency_mean": _finite(float(mean.mean())) if len(mean) else 0.0,
        "latency_max": _finite(float(lat.max())) if len(lat) else 0.0,
        "deadline": model.config.market.round_deadline,
        "missed_deadline": int(model_df["missed_deadline"].sum()) if len(model_df) else 0,
    }


def _git_revision() -> str | None:
    here = Path(__file__).resolve().parent.parent
    if not (here / ".git").exists():
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def provenance(sc: Scenario, command: list[str] | None = None) -> dict[str, Any]:
    """What produced a run: versions, revision, seed and command line."""
    versions = {}
    for dist in DEPENDENCIES:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    try:
        own = metadata.version("mlmarket")
    except metadata.PackageNotFoundError:
        own = None
    return {
        "mlmarket": own,
        "git_revision": _git_revision(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "dependencies": versions,
        "seed": sc.run.seed,
        "command": command if command is not None else [Path(sys.argv[0]).name, *sys.argv[1:]],
    }
