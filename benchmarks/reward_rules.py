"""Per-round cost of every registered reward rule at 10, 100 and 1,000 submissions.

Plain Python: ``python benchmarks/reward_rules.py``. One round of A = 50 assets with
random predictions carrying some signal (``p = 0.3 * target + noise``), stakes in
[1, 100), a stake-weighted metamodel and a budget of 1,000 tokens; each rule is built
with its default parameters and timed on one call of ``payouts`` (wall clock, one
run, BLAS single-threaded as in simulation runs). A second table times the
attribution rules on the same numbers of models (K = 5 slots of k = 4 features).
Numbers are for comparing rules side by side on one machine, not assertions.
"""

from __future__ import annotations

import time
from contextlib import nullcontext

import numpy as np

from mechanisms.base import AttributionInput, ResolvedRound
from mechanisms.registry import load_all
from mechanisms.scoring import (
    correlation_contribution_rows,
    numerai_corr_rows,
    rank_gaussianize_rows,
)

SIZES = (10, 100, 1000)
A = 50


def make_round(n: int, rng: np.random.Generator) -> ResolvedRound:
    target = rng.normal(size=A)
    P = 0.3 * target[None] + rng.normal(size=(n, A))
    stakes = rng.uniform(1, 100, n)
    weights = stakes / stakes.sum()
    meta = weights @ rank_gaussianize_rows(P)
    return ResolvedRound(
        predictions=P,
        target=target,
        stakes=stakes,
        meta=meta,
        weights=weights,
        corr=numerai_corr_rows(P, target),
        mmc=correlation_contribution_rows(P, meta, target),
        budget=1000.0,
        order=rng.permutation(n),
        submitters=np.arange(n),
        round=1,
    )


def make_attribution(n: int, rng: np.random.Generator, K: int = 5, k: int = 4, P: int = 20):
    target = rng.normal(size=A)
    feeds = rng.normal(size=(P, A, k))
    feeds[: P // 4, :, 0] += target
    picks = rng.integers(0, P, size=(n, K))
    picks[rng.random((n, K)) < 0.3] = -1
    return AttributionInput(
        picks=picks, weights=rng.normal(size=(n, K * k)), feeds=feeds, target=target
    )


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000.0


def table(title: str, registry, make, call) -> None:
    rng = np.random.default_rng(0)
    inputs = {n: make(n, rng) for n in SIZES}
    print(f"\n{title}: milliseconds per round (one run)")
    print(f"{'rule':<22}" + "".join(f"{f'n={n}':>12}" for n in SIZES))
    for info in registry:
        cells = []
        for n in SIZES:
            rule = registry.build(info.name, {})
            cells.append(timed(lambda rule=rule, n=n: call(rule, inputs[n])))
        print(f"{info.name:<22}" + "".join(f"{c:>12.2f}" for c in cells))


def main() -> None:
    try:
        from threadpoolctl import threadpool_limits

        limit = threadpool_limits(1)
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency of the engine
        limit = nullcontext()
    registries = load_all()
    with limit:
        table(
            f"reward rules (A = {A})",
            registries["reward"],
            make_round,
            lambda rule, r: rule.payouts(r),
        )
        table(
            f"attribution rules (A = {A}, K = 5, k = 4)",
            registries["attribution"],
            make_attribution,
            lambda rule, a: rule.attribute(a),
        )


if __name__ == "__main__":
    main()
