"""Differential test: the fast path (``sim.model.MarketModel``) against the per-agent
reference (``sim.reference.ReferenceModel``) on small markets.

Both run the same scenario side by side; after every round the model row, every
agent's row (tokens, stake, payout, burned, spent, payoff, ...), and every submitted
model (its weights and predictions) must agree to a relative 1e-9, and at the end
the ledgers must hold the same transfers (count and total per round, phase, reason and
asset). Several seeds, reward, aggregation, slashing, pricing and submission rules;
entry and exit on (the baseline's dynamics), with cases where agents enter and leave.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sim.config import load_scenario
from sim.model import MarketModel
from sim.reference import RECORD_FLOATS, ReferenceModel, UnsupportedScenario, run_reference

RTOL = 1e-9
ATOL = 1e-9
ROUNDS = 30

#: (seed, overrides) of the small markets compared; free riders are outside the
#: reference's scope, so every case has none.
CASES = [
    (0, []),
    (1, []),
    (2, ["mechanisms.reward.name=stake_proportional", "population.dynamics.exit_after=4"]),
    (
        3,
        [
            "mechanisms.reward.name=stake_proportional",
            "mechanisms.aggregation.name=equal",
            "mechanisms.pricing.name=posted_adaptive",
        ],
    ),
    (
        4,
        [
            "mechanisms.aggregation.name=performance_weighted",
            "mechanisms.slashing.name=proportional",
            "mechanisms.slashing.cascade_to_providers=0.5",
        ],
    ),
    (
        5,
        [
            "mechanisms.aggregation.name=inverse_variance",
            "mechanisms.pricing.name=posted_adaptive",
            "mechanisms.submission.name=commit_reveal",
            "mechanisms.submission.miss_probability=0.2",
        ],
    ),
    (
        6,
        [
            "mechanisms.reward.name=deposit_refund_take",
            "mechanisms.slashing.name=redistribute",
        ],
    ),
    (7, ["population.dynamics.enabled=false", "mechanisms.hosting.name=secure_nodes"]),
    # the baseline's task (50 assets) with fewer agents, a sliding window, investors
    # and the dp privacy rule's noise on the feeds
    (
        8,
        [
            "extends=baseline",
            "population.providers.count=8",
            "population.developers.count=40",
            "population.developers.window=5",
            "population.investors.count=2",
            "mechanisms.privacy.name=dp",
        ],
    ),
]

MODEL_COLUMNS = [
    "token_price",
    "token_supply",
    "minted",
    "burned",
    "treasury",
    "metamodel_corr",
    "metamodel_pnl",
    "metamodel_usd",
    "submissions",
    "mean_corr",
    "data_sales",
    "payouts",
    "slashed",
    "total_stake",
    "missed_reveals",
    "entries",
    "exits",
    "active_provider",
    "active_developer",
]

AGENT_COLUMNS = ["id", "type", "active", *RECORD_FLOATS]  # every column of an agent row


def scenario(seed: int, overrides: list[str]):
    """``small`` (or the scenario named by an ``extends=NAME`` item) with ``overrides``."""
    base = next((o.split("=", 1)[1] for o in overrides if o.startswith("extends=")), "small")
    rest = [o for o in overrides if not o.startswith("extends=")]
    return load_scenario(
        base,
        [f"run.seed={seed}", f"run.rounds={ROUNDS}", "population.free_riders.count=0", *rest],
    )


def close(fast, ref) -> bool:
    return np.allclose(
        np.asarray(fast, float), np.asarray(ref, float), rtol=RTOL, atol=ATOL, equal_nan=True
    )


def last_agents(chunks: list[dict], t: int) -> dict[str, np.ndarray]:
    rows = [c for c in chunks if c["round"].size and c["round"][0] == t]
    return {k: np.concatenate([np.zeros(0), *(c[k] for c in rows)]) for k in AGENT_COLUMNS}


def ledger_totals(frame: pd.DataFrame) -> pd.DataFrame:
    keys = ["round", "phase", "reason", "asset"]
    frame = frame.astype({k: str for k in keys[1:]})
    return frame.groupby(keys).amount.agg(["sum", "count"])


@pytest.mark.parametrize("seed, overrides", CASES, ids=[f"seed{c[0]}" for c in CASES])
def test_small_markets_agree_round_by_round(seed, overrides):
    """Every round: model rows, agent rows, submitted models; at the end, the ledgers."""
    sc = scenario(seed, overrides)
    fast, ref = MarketModel(sc), ReferenceModel(sc)
    where = f"seed {seed} {overrides}"
    for t in range(1, ROUNDS + 1):
        fast.step()
        ref.step()
        a, b = fast.model_rows[-1], ref.model_rows[-1]
        for k in MODEL_COLUMNS:
            assert close(a[k], b[k]), f"{where}, round {t}: {k} {a[k]!r} != {b[k]!r}"
        fa, ra = last_agents(fast.agent_chunks, t), last_agents(ref.agent_chunks, t)
        assert np.array_equal(fa["id"], ra["id"]), f"{where}, round {t}: agents differ"
        for k in AGENT_COLUMNS:
            assert close(fa[k], ra[k]), f"{where}, round {t}: agents' {k} differ"
        # the models submitted this round: the same developers, weights, predictions
        F, slot = fast.forecasters, t % fast.ring
        subs = np.flatnonzero(F.r_sub[:, slot])
        mine = [d for d in ref.developers if t in d.open]
        assert subs.tolist() == [d.row for d in mine], f"{where}, round {t}: submitters"
        if mine:
            assert close(F.r_wts[subs, slot], [d.open[t].weights for d in mine])
            assert close(F.r_pred[subs, slot], [d.open[t].prediction for d in mine])
            assert close(F.r_stake[subs, slot], [d.open[t].stake for d in mine])
    lf, lr = ledger_totals(fast.ledger.to_frame()), ledger_totals(ref.ledger.to_frame())
    assert lf.index.equals(lr.index), f"{where}: the ledgers record different flows"
    assert (lf["count"] == lr["count"]).all(), f"{where}: transfer counts differ"
    assert close(lf["sum"], lr["sum"]), f"{where}: transfer totals differ"
    # the dynamics are exercised: in these cases agents enter and leave
    m = pd.DataFrame(ref.model_rows)
    if seed == 2:
        assert m["entries"].sum() > 0 and m["exits"].sum() > 0
    if seed == 3:
        assert m["entries"].sum() > 0


def test_run_reference_tables_match_collect():
    """``run_reference`` gives the tables of ``sim.runner.run`` (model, agents, ledger)."""
    from sim.runner import run

    sc = scenario(11, ["run.rounds=12"])
    fast, ref = run(sc), run_reference(sc)
    assert len(fast.model) == len(ref.model) == 12
    for k in MODEL_COLUMNS:
        assert close(fast.model[k], ref.model[k]), k
    key = ["round", "id"]
    fa = fast.agents.sort_values(key, kind="stable").reset_index(drop=True)
    ra = ref.agents.sort_values(key, kind="stable").reset_index(drop=True)
    assert fa[key].equals(ra[key])
    assert (fa["account"] == ra["account"]).all()
    for k in ("tokens", "stake", "payout", "burned", "spent", "payoff", "wealth"):
        assert close(fa[k], ra[k]), k
    assert len(ref.ledger) == len(fast.ledger)


@pytest.mark.parametrize(
    "override, key",
    [
        ("population.free_riders.count=2", "population.free_riders.count"),
        ("mechanisms.privacy.name=mpc", "mechanisms.privacy.name"),
        ("mechanisms.pricing.name=auction", "mechanisms.pricing.name"),
        ("mechanisms.verification.name=truebit", "mechanisms.verification.name"),
        ("population.sybils.owners=1", "population.sybils.owners"),
        ("population.whales.count=1", "population.whales.count"),
        ("population.providers.bad.noise=0.2", "population.providers.bad.noise"),
        ("market.listings.enabled=true", "market.listings.enabled"),
    ],
)
def test_unsupported_features_are_named(override, key):
    sc = scenario(0, [override])
    with pytest.raises(UnsupportedScenario, match=key.replace(".", r"\.")):
        ReferenceModel(sc)
