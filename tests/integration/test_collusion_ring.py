"""The shipped ``collusion_ring`` scenario: a ring and a whale in a whole run."""

from __future__ import annotations

import numpy as np
import pytest

from sim import load_scenario, run


@pytest.fixture(scope="module")
def ring():
    return run(load_scenario("collusion_ring", ["run.rounds=20"]))


def test_ring_members_and_the_whale_are_in_the_agent_table(ring):
    agents = ring.agents
    genesis = agents[agents["round"] == 0]
    by = genesis.groupby(["type", "strategy"], observed=True).size()
    assert by[("provider", "colluder")] == 3
    assert by[("developer", "colluder")] == 8
    assert by[("investor", "whale")] == 1
    s = ring.summary
    assert {"developer/colluder", "provider/colluder", "investor/whale"} <= set(s["by_strategy"])
    assert s["by_strategy"]["developer/colluder"]["agents"] == 8
    assert np.isfinite(s["by_strategy"]["developer/colluder"]["roi_mean"])


def test_the_ring_pumps_its_listed_models_and_the_whale_trades(ring):
    reasons = set(ring.ledger["reason"].astype(str))
    assert {"ring_pump", "whale_open", "whale_close", "listing"} <= reasons
    m = ring.model
    assert (m["ring_pump"] > 0).any()
    assert m["ring_weight"].between(0.0, 1.0 + 1e-9).all()
    assert m["ring_weight"].iloc[-1] > 0


def test_invariants_hold(ring):
    s = ring.summary
    assert s["invariants_ok"] and s["rounds"] == 20
    t = s["tokens"]
    assert t["supply_end"] == pytest.approx(t["supply_start"] + t["minted"] - t["burned"], rel=1e-9)
    led = ring.ledger
    assert (led["amount"] > 0).all()
    # every agent's tokens in the last round are its ledger balance
    tok = led[led["asset"] == "token"]
    bal = (
        tok.groupby("dst", observed=True)["amount"]
        .sum()
        .sub(tok.groupby("src", observed=True)["amount"].sum(), fill_value=0.0)
    )
    last = ring.agents[ring.agents["round"] == 20]
    np.testing.assert_allclose(
        last["tokens"].to_numpy(), bal.reindex(last["account"]).fillna(0.0).to_numpy(), atol=1e-6
    )
