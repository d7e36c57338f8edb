"""Free riders' copy source (``population.free_riders.copy_source``): the best visible
prediction (the default) or a copy of the metamodel, the stake-weighted mean of the
visible developers' rank-gaussianized predictions."""

from __future__ import annotations

import numpy as np
import pytest

from agents.forecaster import DEVELOPER, FREE_RIDER
from mechanisms.scoring import correlation_contribution_rows, rank_gaussianize_rows
from sim import ScenarioError, load_scenario
from sim.model import MarketModel

COPY_ALL = [
    "run.rounds=8",
    "population.free_riders.copy_probability=1.0",
    "market.leak_probability=0.0",
]


def _spied(source: str) -> tuple[MarketModel, list[dict]]:
    """A small market whose submit phase records what was visible before it ran."""
    model = MarketModel(
        load_scenario("small", [*COPY_ALL, f"population.free_riders.copy_source={source}"])
    )
    F, submit, seen = model.forecasters, model.phase_submit, []

    def spy():
        rows = model._trained.copy()
        seen.append(
            {
                "devs": rows[F.kind[rows] == DEVELOPER],
                "corr": F.trailing_corr.copy(),
            }
        )
        submit()

    model.phase_submit = spy
    return model, seen


def _round(model: MarketModel, seen: list[dict]):
    """The next round in which developers submit (the first rounds only buy data)."""
    F = model.forecasters
    model.step()
    while not seen[-1]["devs"].size:
        model.step()
    slot = model.t % model.ring
    copiers = np.flatnonzero(F.r_sub[:, slot] & (F.kind == FREE_RIDER))
    devs = seen[-1]["devs"]
    assert copiers.size == (F.kind == FREE_RIDER).sum() == 3  # every free rider copied
    assert F.r_sub[devs, slot].all()  # every visible developer submitted
    return F, slot, copiers, devs


def test_the_default_copies_the_best_visible_prediction():
    from sim.config import FreeRidersConfig

    assert FreeRidersConfig().copy_source == "best"
    model, seen = _spied("best")
    for _ in range(5):
        F, slot, copiers, devs = _round(model, seen)
        best = devs[np.argmax(seen[-1]["corr"][devs])]
        np.testing.assert_array_equal(F.r_pred[copiers, slot], F.r_pred[[best] * 3, slot])


def test_a_metamodel_copy_is_the_stake_weighted_mean_of_visible_predictions():
    model, seen = _spied("metamodel")
    staked = []
    for _ in range(5):
        F, slot, copiers, devs = _round(model, seen)
        # the developers' stakes once they have staked this round: the aggregation's
        s = np.maximum(F.r_stake[devs, slot], 0.0)
        staked.append(s.sum() > 0)
        w = s / s.sum() if staked[-1] else np.full(devs.size, 1.0 / devs.size)
        want = w @ rank_gaussianize_rows(F.r_pred[devs, slot])
        for c in copiers:
            np.testing.assert_allclose(F.r_pred[c, slot], want, rtol=0, atol=1e-12)
        # developers' own predictions are submitted unchanged, so the copy differs
        assert not np.allclose(F.r_pred[devs[0], slot], want)
        # the metamodel (copies included) ranks the assets exactly as the copy does,
        # so the copy's MMC is 0 whatever the target
        meta = model.meta_ring[slot]
        np.testing.assert_array_equal(np.argsort(meta), np.argsort(want))
        target = np.random.default_rng(len(staked)).standard_normal(model.A)
        mmc = correlation_contribution_rows(F.r_pred[copiers, slot], meta, target)
        np.testing.assert_allclose(mmc, 0.0, atol=1e-12)
    assert all(staked)


def test_a_metamodel_copy_waits_for_the_last_visible_prediction():
    model, seen = _spied("metamodel")
    F, slot, copiers, devs = _round(model, seen)
    assert F.r_time[copiers, slot].min() >= F.r_time[devs, slot].max()


def test_an_unknown_copy_source_is_an_error():
    with pytest.raises(ScenarioError, match="copy_source"):
        load_scenario("small", ["population.free_riders.copy_source=mean"])
