"""The shipped ``poisoned_data`` scenario runs and reports its bad providers."""

from __future__ import annotations

import numpy as np

from agents.base import STRATEGIES
from sim import load_scenario, run

BAD_KINDS = ("noise", "flipped", "stale", "resold")


def strategy_names(col):
    """The agents table's strategy column as names (codes are mapped through STRATEGIES)."""
    if np.issubdtype(np.asarray(col).dtype, np.integer):
        return np.asarray(STRATEGIES, dtype=object)[np.asarray(col)]
    return np.asarray(col, dtype=object)


def test_poisoned_data_runs_and_reports_bad_providers():
    sc = load_scenario("poisoned_data", ["run.rounds=15"])
    bad = sc.population.providers.bad
    assert bad.noise + bad.flipped + bad.stale + bad.resold > 0
    assert sc.mechanism("slashing").params.cascade_to_providers > 0
    res = run(sc)
    assert res.summary["invariants_ok"]
    assert len(res.model) == 15
    a = res.agents
    p = a[a["type"].astype(str) == "provider"].copy()
    p["strategy"] = strategy_names(p["strategy"])
    kinds = set(p["strategy"])
    assert kinds & set(BAD_KINDS), "the scenario's genesis has bad providers"
    assert "honest" in kinds
    # revenue is recorded per provider and round, bad providers' too
    sales = p[p["round"] > 0].groupby("strategy")["revenue"].sum()
    assert sales["honest"] > 0
    assert all(np.isfinite(sales[k]) for k in kinds)
    assert sum(sales[k] for k in kinds & set(BAD_KINDS)) > 0  # buyers try them early
    # every bad provider that ever took part has an outcome row under its strategy
    by = res.summary["by_strategy"]
    for k in kinds & set(BAD_KINDS):
        n = p.loc[p["strategy"] == k, "id"].nunique()
        assert by[f"provider/{k}"]["agents"] == n
    adv = res.summary["adversaries"]
    assert adv["agents"] == sum(by[f"provider/{k}"]["agents"] for k in kinds & set(BAD_KINDS))
    # tokens are conserved: supply_end = supply_start + minted - burned
    t = res.summary["tokens"]
    assert np.isclose(t["supply_end"], t["supply_start"] + t["minted"] - t["burned"])
