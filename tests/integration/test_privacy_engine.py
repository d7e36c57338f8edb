"""Privacy in the economy: leaks, compute fees, the deadline, and faithful vs modeled."""

from __future__ import annotations

import numpy as np
import pytest

from agents.forecaster import fit_ridge_gd, predict
from mechanisms.base import TrainingJob
from sim import load_scenario, run
from sim.model import MarketModel

BASE = ["run.rounds=20", "population.free_riders.count=4", "market.leak_probability=0.5"]

#: Secure training and scoring under faithful mode agree with the plaintext gradient
#: descent of the same model within these bounds: 100 epochs of 16-bit fixed point
#: lose about 2^-16 per truncation (weights), and a prediction sums d of them times
#: features of size ~3 (measured: weights within 4e-5, predictions within 4e-4).
WEIGHT_TOLERANCE = 5e-4
PREDICTION_TOLERANCE = 5e-3


def test_mpc_nothing_leaks_and_developers_pay_for_compute():
    plain = run(load_scenario("small", BASE))
    secure = run(load_scenario("small", [*BASE, "mechanisms.privacy.name=mpc"]))
    assert plain.model["leaks"].sum() > 0
    assert secure.model["leaks"].sum() == 0
    fees = secure.model["compute_fees"]
    assert (fees[secure.model["round"] > 2] > 0).all()
    led = secure.ledger
    paid = led[(led["reason"] == "compute") & (led["asset"] == "token")]
    assert paid["amount"].sum() == pytest.approx(fees.sum())
    assert (paid["dst"] == "fees").all()
    assert secure.summary["invariants_ok"]
    assert secure.model["missed_deadline"].sum() == 0  # an hour is plenty on a WAN


def test_a_model_that_misses_the_deadline_misses_the_round():
    res = run(
        load_scenario(
            "small",
            [*BASE, "mechanisms.privacy.name=mpc", "market.round_deadline=1.0"],  # < 100 RTTs
        )
    )
    m = res.model
    assert m["missed_deadline"].sum() > 0
    assert (m["latency_mean"].dropna() > 1.0).all()
    # free riders copying is all that is left: no developer submits
    assert m["submissions"].max() <= 4
    assert m["compute_fees"].sum() > 0  # the compute was spent anyway


def test_secure_training_is_verified_by_the_protocol():
    res = run(
        load_scenario(
            "small",
            [*BASE, "mechanisms.privacy.name=mpc", "population.developers.lazy_fraction=0.5"],
        )
    )
    assert res.model["lazy_claims"].sum() == 0


def test_dp_noise_costs_accuracy_and_still_leaks():
    args = [*BASE, "population.free_riders.count=0", "run.rounds=25"]
    plain = run(load_scenario("small", args))
    noisy = run(
        load_scenario(
            "small", [*args, "mechanisms.privacy.name=dp", "mechanisms.privacy.epsilon=0.5"]
        )
    )
    assert noisy.model["mean_corr"].mean() < plain.model["mean_corr"].mean() - 0.02
    leaky = run(load_scenario("small", [*BASE, "mechanisms.privacy.name=dp"]))
    assert leaky.model["leaks"].sum() > 0


@pytest.mark.parametrize("name", ["mpc", "he"])
def test_faithful_kernels_agree_with_the_modeled_cost_and_model(name):
    """Each faithful training event costs what the model charges (counts are exact) and
    yields the plaintext gradient descent's model within the fixed-point tolerance."""
    args = [
        "run.rounds=6",
        "task.assets=8",
        "population.providers.count=3",
        "population.developers.count=3",
        "population.developers.window=2",
        "population.free_riders.count=0",
        f"mechanisms.privacy.name={name}",
        "mechanisms.privacy.mode=faithful",
        "mechanisms.privacy.epochs=20",
    ]
    if name == "he":
        args.append("mechanisms.privacy.key_bits=256")
    model = MarketModel(load_scenario("small", args))
    rule = model.rules["privacy"]
    kernels = model._run_kernels
    events = []

    def checked(rule_, rows, cols, ridge):
        cost, weights, preds = kernels(rule_, rows, cols, ridge)
        n_feeds = (cols >= 0).reshape(rows.size, model.K, model.k).any(axis=2).sum(axis=1)
        job = TrainingJob(model.window_rows, n_feeds, model.k, model.A, ridge)
        modeled = rule.training_cost(job)
        np.testing.assert_allclose(cost.fee, modeled.fee, rtol=1e-12)
        np.testing.assert_allclose(cost.seconds, modeled.seconds, rtol=1e-12)
        np.testing.assert_allclose(cost.bytes_sent, modeled.bytes_sent, rtol=1e-12)
        ref = fit_ridge_gd(
            model.gram,
            model.xty,
            model._gram_cols(cols),
            ridge,
            model.window_rows,
            rule.params.epochs,
            rule.params.lr,
        )
        np.testing.assert_allclose(weights, ref, atol=WEIGHT_TOLERANCE)
        F = model.forecasters
        np.testing.assert_allclose(
            preds, predict(model.feeds, F.picks[rows], ref), atol=PREDICTION_TOLERANCE
        )
        events.append(rows.size)
        return cost, weights, preds

    model._run_kernels = checked
    for _ in range(6):
        model.step()
    assert sum(events) >= 6
