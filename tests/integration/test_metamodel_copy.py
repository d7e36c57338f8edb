"""The metamodel_copy scenario, 25 rounds: MMC pays copies of the metamodel nothing,
CORR alone pays them."""

from __future__ import annotations

import numpy as np
import pytest

from sim import load_scenario, run

ROUNDS = ["run.rounds=25"]


@pytest.fixture(scope="module")
def mmc():
    return run(load_scenario("metamodel_copy", ROUNDS))


def _per_agent(res, kind: str, key: str = "payout") -> float:
    b = res.summary["by_strategy"][f"{kind}/honest"]
    return b[key] / b["agents"]


def test_every_free_rider_copies_the_metamodel_every_round(mmc):
    sc = load_scenario("metamodel_copy", ROUNDS)
    riders = sc.population.free_riders
    assert (riders.count, riders.copy_probability, riders.copy_source) == (20, 1.0, "metamodel")
    assert sc.mechanisms["reward"].params.w_corr == 0.0 and sc.market.leak_probability == 0.0
    a = mmc.agents
    scored = a[(a["type"] == "free_rider") & a["score"].notna()]
    rounds = scored.groupby("round")["id"].nunique()
    assert len(rounds) > 15 and (rounds == 20).all()
    assert mmc.summary["invariants_ok"] is True


def test_mmc_pays_a_copy_of_the_metamodel_nothing(mmc):
    a = mmc.agents
    riders = a[a["type"] == "free_rider"]
    # every copy ranks the assets as the metamodel does: MMC = 0 up to rounding
    moved = (riders["payout"] + riders["burned"]).groupby(riders["round"]).sum()
    assert moved.max() < 1e-9
    assert _per_agent(mmc, "developer") > 1.0
    assert _per_agent(mmc, "free_rider") < 0.01 * _per_agent(mmc, "developer")


def test_corr_alone_pays_the_copies():
    res = run(
        load_scenario(
            "metamodel_copy",
            [*ROUNDS, "mechanisms.reward.w_corr=0.5", "mechanisms.reward.w_mmc=0.0"],
        )
    )
    assert _per_agent(res, "free_rider") > 0.5 * _per_agent(res, "developer") > 0
    assert np.isfinite(res.summary["roi_by_type"]["free_rider"])
