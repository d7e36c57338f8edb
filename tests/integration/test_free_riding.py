"""Free riding over the leak network: the shipped plaintext and MPC scenarios, 20 rounds each."""

from __future__ import annotations

import numpy as np
import pytest

from agents.base import ACTIVE
from agents.forecaster import DEVELOPER, FREE_RIDER
from sim import load_scenario, run
from sim.model import MarketModel

ROUNDS = ["run.rounds=20"]


@pytest.fixture(scope="module")
def plaintext():
    return run(load_scenario("free_riding_plaintext", ROUNDS))


@pytest.fixture(scope="module")
def mpc():
    return run(load_scenario("free_riding_mpc", ROUNDS))


def _riders(res):
    a = res.agents
    return a[a["type"] == "free_rider"]


def _invariants(res):
    s = res.summary
    assert s["invariants_ok"] is True and len(res.model) == 20
    t = s["tokens"]
    assert t["supply_end"] == pytest.approx(t["supply_start"] + t["minted"] - t["burned"], rel=1e-9)
    led = res.ledger
    assert (led["amount"] > 0).all()


def test_the_two_scenarios_differ_only_in_the_privacy_rule():
    a = load_scenario("free_riding_plaintext").to_dict()
    b = load_scenario("free_riding_mpc").to_dict()
    assert a["mechanisms"].pop("privacy")["name"] == "plaintext"
    assert b["mechanisms"].pop("privacy")["name"] == "mpc"
    assert a == b
    assert a["mechanisms"]["submission"]["name"] == "commit_reveal"
    assert a["market"]["leak_network"] == "barabasi_albert"
    assert a["population"]["free_riders"]["count"] >= 20


def test_plaintext_leaks_spread_and_feed_free_riders(plaintext):
    _invariants(plaintext)
    m = plaintext.model
    assert m["leaks"].sum() > 0
    # held leaks outlive their round (half-life) and spread: more held than new
    assert (m["leaks_held"] > m["leaks"]).any()
    assert plaintext.summary["flows"]["leaks"] == m["leaks"].sum()
    riders = _riders(plaintext)
    assert riders["score"].notna().any()  # they submit models trained on leaked data
    assert riders["payout"].sum() > 0


def test_mpc_nothing_leaks_and_free_riders_submit_nothing(mpc):
    _invariants(mpc)
    m = mpc.model
    assert m["leaks"].sum() == 0 and m["leaks_held"].sum() == 0
    riders = _riders(mpc)
    assert len(riders) > 0
    # no leak to train on and nothing visible to copy under commit-reveal
    assert riders["score"].isna().all()
    assert riders["payout"].sum() == 0 and riders["spent"].sum() == 0
    assert riders["stake"].sum() == 0


def test_leak_state_lives_on_the_network_and_entrants_attach():
    sc = load_scenario(
        "free_riding_plaintext",
        [*ROUNDS, "population.dynamics.max_entrants=20", "population.dynamics.outside_option=-1"],
    )
    model = MarketModel(sc)
    F, P = model.forecasters, model.providers
    n0 = len(F)
    assert model.leak_adj.shape == (n0, n0)
    buy = model.phase_buy
    used = []

    def checked_buy():
        # free riders pick only feeds they hold
        buy()
        riders = np.flatnonzero((F.kind == FREE_RIDER) & (F.status == ACTIVE))
        r, s = np.nonzero(F.picks[riders] >= 0)
        assert model.leaked[riders[r], F.picks[riders][r, s]].all()
        used.append(r.size)

    model.phase_buy = checked_buy
    for _ in range(20):
        model.step()
        nf, np_ = len(F), len(P)
        adj = model.leak_adj
        assert adj.shape == (nf, nf) and (adj != adj.T).nnz == 0
        held = model.leaked[:nf, :np_]
        assert not held[F.kind == DEVELOPER].any()  # only free riders hold leaks
        assert not held[F.status != ACTIVE].any()
    assert nf > n0  # agents entered
    assert sum(used) > 0
    deg = np.asarray(adj.sum(axis=1)).ravel()
    assert (deg[n0:] >= sc.market.leak_degree).all()  # each entrant linked on arrival
    assert (F.kind == FREE_RIDER).sum() >= sc.population.free_riders.count
