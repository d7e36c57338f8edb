"""Sybils (``population.sybils``): one owner split over k identities, at genesis and in a round."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from agents.base import ACTIVE, LEAVING, STRATEGY
from agents.forecaster import DEVELOPER
from sim import load_scenario, run
from sim.model import MarketModel

OWNERS, K = 2, 3
# constant capital and stake fraction, so one developer's draw is known exactly
EQUAL = [
    "population.developers.tokens=100.0",
    "population.developers.usd=1000.0",
    "population.developers.stake_fraction=0.5",
]
SYBILS = [
    "run.rounds=8",
    f"population.sybils.owners={OWNERS}",
    f"population.sybils.identities={K}",
    *EQUAL,
]


def _model(*extra: str) -> MarketModel:
    return MarketModel(load_scenario("small", [*SYBILS, *extra]))


def _groups(model: MarketModel) -> dict[int, np.ndarray]:
    F = model.forecasters
    rows = np.flatnonzero(F.owner >= 0)
    return {int(o): rows[F.owner[rows] == o] for o in np.unique(F.owner[rows])}


def _step_until_submitted(model: MarketModel) -> int:
    """Step until the sybils submit; return the round's slot."""
    F = model.forecasters
    rows = np.flatnonzero(F.owner >= 0)
    for _ in range(model.config.run.rounds):
        model.step()
        slot = model.t % model.ring
        if F.r_sub[rows, slot].all():
            return slot
    raise AssertionError("the sybils never submitted")


def test_identities_share_an_owner_who_is_the_first_row_of_its_group():
    model = _model()
    F = model.forecasters
    groups = _groups(model)
    assert len(groups) == OWNERS
    for owner, rows in groups.items():
        assert rows.size == K and rows[0] == owner and F.owner[owner] == owner
        assert (F.kind[rows] == DEVELOPER).all()
        assert (F.strategy[rows] == STRATEGY["sybil"]).all()
    others = np.flatnonzero(F.owner < 0)
    assert (F.strategy[others] != STRATEGY["sybil"]).all()
    assert int((F.kind == DEVELOPER).sum()) == 20 + OWNERS * K  # beside developers.count


def test_a_groups_capital_adds_up_to_one_developers():
    model = _model()
    F, L = model.forecasters, model.ledger
    honest = np.flatnonzero((F.kind == DEVELOPER) & (F.owner < 0))
    for rows in _groups(model).values():
        np.testing.assert_allclose(L.balances(F.wallet[rows], "token"), 100.0 / K)
        np.testing.assert_allclose(L.balances(F.wallet[rows], "usd"), 1000.0 / K)
        assert F.capital[rows].sum() == pytest.approx(F.capital[honest[0]])
        assert np.all(F.stake_fraction[rows] == F.stake_fraction[rows[0]])


def test_a_groups_draws_are_one_developers_draws():
    # with random capital the identities still split one draw evenly
    model = MarketModel(load_scenario("small", ["population.sybils.owners=3"]))
    for rows in _groups(model).values():
        cap = model.forecasters.capital[rows]
        np.testing.assert_allclose(cap, cap[0])
    caps = [model.forecasters.capital[r].sum() for r in _groups(model).values()]
    assert len(set(np.round(caps, 9))) == 3  # each group its own draw


def test_only_the_owner_buys_data_and_its_budget_is_the_groups():
    model = _model()
    slot = _step_until_submitted(model)
    F = model.forecasters
    led = model.ledger.to_frame()
    buys = led[led["reason"] == "data_purchase"]
    buyers = set(buys["src"].astype(str))
    for owner, rows in _groups(model).items():
        names = [model.ledger.account_name(int(w)) for w in F.wallet[rows]]
        assert names[0] in buyers  # the owner buys
        assert not buyers & set(names[1:])  # its identities never do
        # and they use what it bought
        assert (F.r_picks[rows, slot] == F.r_picks[owner, slot]).all()
        assert (F.r_picks[owner, slot] >= 0).any()


def test_the_owner_spends_the_groups_data_budget_capped_by_its_wallet():
    model = _model()
    F, L = model.forecasters, model.ledger
    owners = np.array(sorted(_groups(model)))
    budgets = model._sybil_budgets(owners, np.zeros(owners.size))
    cfg = model.config.population.developers
    wallet = L.balances(F.wallet[owners], "token")
    np.testing.assert_allclose(budgets, np.minimum(cfg.data_budget * K * wallet, wallet))
    assert budgets == pytest.approx(cfg.data_budget * 100.0)  # one developer's budget


def test_a_group_pools_its_liquid_tokens_before_buying():
    model = _model()
    F, L = model.forecasters, model.ledger
    owner, rows = next(iter(_groups(model).items()))
    # the owner has paid for data: its wallet is short of its identities'
    L.transfer(F.wallet[owner], model.fees, "token", 20.0, phase="buy", reason="test")
    before = L.balances(F.wallet[rows], "token")
    model._sybil_budgets(np.array([owner]), np.zeros(1))
    after = L.balances(F.wallet[rows], "token")
    np.testing.assert_allclose(after, before.sum() / K)
    honest = np.flatnonzero(F.owner < 0)
    assert L.balances(F.wallet[honest], "token") == pytest.approx(100.0)  # nobody else


def test_split_stake_submits_identical_predictions_and_shares_one_stake():
    model = _model()
    slot = _step_until_submitted(model)
    F = model.forecasters
    honest = np.flatnonzero((F.kind == DEVELOPER) & (F.owner < 0) & F.r_sub[:, slot])
    for rows in _groups(model).values():
        preds = F.r_pred[rows, slot]
        np.testing.assert_array_equal(preds, np.repeat(preds[:1], K, axis=0))
        np.testing.assert_array_equal(F.r_wts[rows, slot], F.r_wts[rows[:1], slot].repeat(K, 0))
        # the group stakes what one developer with the same capital does (its data is
        # paid once; the extra identities pay only their own fees)
        total = F.r_stake[rows, slot].sum()
        assert total == pytest.approx(np.median(F.r_stake[honest, slot]), rel=0.05)
        # spread about evenly: the owner's wallet paid for the data
        assert F.r_stake[rows, slot].min() > 0.8 * total / K


def test_split_models_submits_slightly_different_models():
    model = _model("population.sybils.split=models", "population.sybils.noise=0.1")
    slot = _step_until_submitted(model)
    F = model.forecasters
    for rows in _groups(model).values():
        preds = F.r_pred[rows, slot]
        assert not np.allclose(preds[1:], preds[0])
        for p in preds[1:]:
            assert np.corrcoef(p, preds[0])[0, 1] > 0.9
        assert (F.r_picks[rows, slot] == F.r_picks[rows[0], slot]).all()


def test_a_group_is_judged_as_one_and_leaves_together():
    model = _model()
    F = model.forecasters
    rows = _groups(model)[min(_groups(model))]
    payoff = np.zeros(len(F))
    payoff[rows] = [-3.0, 1.0, 0.5]
    got = model._group_payoffs(payoff)
    np.testing.assert_allclose(got[rows], -0.5)
    others = np.setdiff1d(np.arange(len(F)), rows)
    np.testing.assert_array_equal(got[others], payoff[others])
    F.status[rows[1]] = LEAVING
    model._sybil_exits()
    assert (F.status[rows] == LEAVING).all()
    assert (F.leave_round[rows[[0, 2]]] == model.t + model.lag).all()
    untouched = _groups(model)[max(_groups(model))]
    assert (F.status[untouched] == ACTIVE).all()


def test_without_owners_nothing_changes():
    base = ["run.rounds=6"]
    plain = run(load_scenario("small", base))
    # the other sybil keys draw nothing and change nothing while owners = 0
    off = run(
        load_scenario(
            "small",
            [*base, "population.sybils.identities=7", "population.sybils.split=models"],
        )
    )
    pd.testing.assert_frame_equal(plain.model, off.model)
    pd.testing.assert_frame_equal(plain.agents, off.agents)
    assert "sybils" not in plain.summary and "developer/sybil" not in plain.summary["by_strategy"]
    model = MarketModel(load_scenario("small", base))
    assert (model.forecasters.owner == -1).all()


def test_sybils_leave_the_other_agents_draws_unchanged():
    plain = MarketModel(load_scenario("small", ["population.free_riders.count=3"]))
    with_sybils = MarketModel(
        load_scenario("small", ["population.free_riders.count=3", "population.sybils.owners=2"])
    )
    n = len(plain.forecasters)
    np.testing.assert_array_equal(plain.forecasters.capital, with_sybils.forecasters.capital[:n])
    np.testing.assert_array_equal(plain.providers.noise, with_sybils.providers.noise)
