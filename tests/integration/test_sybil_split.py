"""The shipped sybil_split scenario runs under a sybil-proof and a Shapley reward rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim import load_scenario, run
from sim.runner import ADVERSARY_OFF


@pytest.fixture(scope="module", params=["numerai", "shapley"])
def result(request):
    return run(
        load_scenario("sybil_split", ["run.rounds=15", f"mechanisms.reward.name={request.param}"])
    )


def test_summary_reports_every_group_against_honest_developers(result):
    s = result.summary
    assert s["invariants_ok"] is True
    sy = s["sybils"]
    assert (sy["owners"], sy["identities"], sy["split"]) == (5, 4, "stake")
    assert len(sy["groups"]) == 5 and all(g["identities"] == 4 for g in sy["groups"])
    for key in ("roi_mean", "payoff_usd", "honest_genesis_roi_mean", "roi_vs_honest"):
        assert math.isfinite(sy[key])
    assert sy["roi_vs_honest"] == pytest.approx(sy["roi_mean"] - sy["honest_genesis_roi_mean"])
    assert sy["roi_mean"] == pytest.approx(np.mean([g["roi"] for g in sy["groups"]]))
    assert s["by_strategy"]["developer/sybil"]["agents"] == 20
    # the groups' payoffs are their identities' payoffs, as the strategy table counts them
    assert sy["payoff_usd"] == pytest.approx(s["by_strategy"]["developer/sybil"]["payoff_usd"])
    # the sybils were paid (their identities submitted and were scored)
    assert sum(g["payout"] for g in sy["groups"]) > 0


def test_group_wealth_matches_the_agent_table_and_tokens_are_conserved(result):
    s, agents = result.summary, result.agents
    last = agents[(agents["round"] == agents["round"].max()) & (agents["strategy"] == "sybil")]
    first = agents[(agents["round"] == 0) & (agents["strategy"] == "sybil")]
    assert len(first) == 20
    wealth = sum(g["wealth_usd"] for g in s["sybils"]["groups"])
    if len(last) == 20:  # nobody left: final wealth is the last rows' wealth
        assert wealth == pytest.approx(last["wealth"].sum(), rel=1e-9)
    t = s["tokens"]
    assert t["supply_end"] == pytest.approx(t["supply_start"] + t["minted"] - t["burned"], rel=1e-9)


def test_the_counterfactual_switches_sybils_off():
    assert "population.sybils.owners=0" in ADVERSARY_OFF
    sc = load_scenario("sybil_split", ADVERSARY_OFF)
    assert sc.population.sybils.owners == 0
