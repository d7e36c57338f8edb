"""Each registered rule on a hand-computed case."""

import numpy as np
import pytest

from mechanisms.base import (
    FeedMarket,
    ResolvedRound,
    SlashInput,
    SubmissionSet,
    TrainingJob,
    VerificationInput,
)
from mechanisms.registry import load_all

REGISTRIES = load_all()


def make(family, name, **params):
    """Rule instance built by name from validated params, as a scenario builds it."""
    return REGISTRIES[family].build(name, params)


def resolved(stakes, corr, mmc=None, budget=0.0):
    stakes = np.asarray(stakes, dtype=float)
    n = stakes.shape[0]
    return ResolvedRound(
        predictions=np.zeros((n, 3)),
        target=np.zeros(3),
        stakes=stakes,
        meta=np.zeros(3),
        weights=np.full(n, 1.0 / n),
        corr=np.asarray(corr, dtype=float),
        mmc=np.zeros(n) if mmc is None else np.asarray(mmc, dtype=float),
        budget=budget,
    )


# --- reward: numerai ---------------------------------------------------------------


def test_numerai_payout_with_throttle_and_clip():
    # stakes 100, 300, 600 (total at risk 1000); budget T = 500 -> pf = 0.5
    # score = 0.5 CORR + 2 MMC:
    #   0: 0.5*0.02 + 2*0.01  = 0.03   -> *pf 0.015  -> within +-0.05 -> 100 * 0.015 = 1.5
    #   1: 0.5*0.04 + 2*0.05  = 0.12   -> *pf 0.06   -> clipped 0.05  -> 300 * 0.05 = 15
    #   2: 0.5*-0.03 + 2*-0.02 = -0.055 -> *pf -0.0275 -> 600 * -0.0275 = -16.5
    rule = make("reward", "numerai")
    r = resolved([100, 300, 600], [0.02, 0.04, -0.03], [0.01, 0.05, -0.02], budget=500)
    np.testing.assert_allclose(rule.payouts(r), [1.5, 15.0, -16.5], atol=1e-12)


def test_numerai_pf_is_one_when_target_exceeds_stake_and_lower_clip_binds():
    # payout_target 1e6 > total stake 1000 -> pf = 1 (the budget is ignored)
    # 0: 0.5*0.02 + 2*0.01 = 0.03 -> 100 * 0.03 = 3
    # 1: 0.5*-0.1 + 2*-0.03 = -0.11 -> clipped -0.05 -> 900 * -0.05 = -45
    rule = make("reward", "numerai", payout_target=1e6)
    r = resolved([100, 900], [0.02, -0.1], [0.01, -0.03], budget=1.0)
    np.testing.assert_allclose(rule.payouts(r), [3.0, -45.0], atol=1e-12)


def test_numerai_earlier_era_formula():
    # w_corr=1, w_mmc=0, clip=0.25: stake * clip(corr, -0.25, 0.25) (pf = 1)
    rule = make("reward", "numerai", w_corr=1.0, w_mmc=0.0, clip=0.25, payout_target=1e9)
    r = resolved([10, 10, 10], [0.1, 0.4, -0.3], [1.0, 1.0, 1.0])
    np.testing.assert_allclose(rule.payouts(r), [1.0, 2.5, -2.5], atol=1e-12)


def test_numerai_nothing_staked_pays_nothing():
    rule = make("reward", "numerai")
    np.testing.assert_array_equal(rule.payouts(resolved([0, 0], [0.1, -0.1], budget=10)), [0, 0])


# --- reward: stake_proportional ------------------------------------------------------


def test_stake_proportional_split_and_penalty():
    # w = stake * max(corr, 0) = [10*0.1, 30*0.2, 0, 0] = [1, 6, 0, 0], sum 7
    # budget 100 -> 100/7 = 14.2857, 600/7 = 85.7143
    # corr -0.5 < 0: penalty 1 * stake 60 * min(0.5, clip 0.25) = 15 owed
    rule = make("reward", "stake_proportional")
    r = resolved([10, 30, 60, 20], [0.1, 0.2, -0.5, 0.0], budget=100)
    np.testing.assert_allclose(rule.payouts(r), [100 / 7, 600 / 7, -15.0, 0.0], atol=1e-12)


def test_stake_proportional_params_change_penalty():
    # penalty 2, clip 1: -2 * 60 * min(0.5, 1) = -60; corr -0.1: -2 * 20 * 0.1 = -4
    rule = make("reward", "stake_proportional", penalty=2.0, clip=1.0)
    r = resolved([10, 60, 20], [0.1, -0.5, -0.1], budget=50)
    np.testing.assert_allclose(rule.payouts(r), [50.0, -60.0, -4.0], atol=1e-12)


def test_stake_proportional_pays_nothing_when_nothing_positive():
    rule = make("reward", "stake_proportional")
    np.testing.assert_array_equal(rule.payouts(resolved([5, 5], [0.0, 0.0], budget=9)), [0, 0])
    # penalties still owed: -1 * 5 * 0.1 = -0.5
    out = rule.payouts(resolved([5, 5], [0.0, -0.1], budget=9))
    np.testing.assert_allclose(out, [0.0, -0.5], atol=1e-12)


# --- slashing ----------------------------------------------------------------------


def _slash_in(payouts, stakes):
    payouts = np.asarray(payouts, dtype=float)
    return SlashInput(
        payouts=payouts, stakes=np.asarray(stakes, float), scores=np.zeros(len(payouts))
    )


def test_burn_negative_caps_at_stake():
    # payouts [5, -3, -50, 0, -1] with stakes [10, 10, 20, 0, 4]
    # taken = min(max(-payout, 0), stake) = [0, 3, 20 (capped), 0, 1]
    rule = make("slashing", "burn_negative")
    taken = rule.slash(_slash_in([5.0, -3.0, -50.0, 0.0, -1.0], [10, 10, 20, 0, 4.0]))
    np.testing.assert_array_equal(taken, [0.0, 3.0, 20.0, 0.0, 1.0])
    assert rule.destination == "burn"


def test_no_slashing_burns_nothing():
    rule = make("slashing", "none", cascade_to_providers=0.5)
    assert rule.params.cascade_to_providers == 0.5
    np.testing.assert_array_equal(rule.slash(_slash_in([-5.0, 2.0], [10.0, 1.0])), [0, 0])


# --- aggregation -------------------------------------------------------------------


def _subs(stakes):
    stakes = np.asarray(stakes, dtype=float)
    return SubmissionSet(stakes=stakes, trailing_corr=np.zeros(stakes.shape[0]))


def test_stake_weighted():
    # [0, 2, 6] / 8 = [0, 0.25, 0.75]
    rule = make("aggregation", "stake_weighted")
    np.testing.assert_allclose(rule.weights(_subs([0, 2, 6])), [0, 0.25, 0.75], atol=1e-15)


def test_stake_weighted_zero_stakes_fall_back_to_equal():
    rule = make("aggregation", "stake_weighted")
    np.testing.assert_allclose(rule.weights(_subs([0, 0, 0])), [1 / 3] * 3, atol=1e-15)
    assert rule.weights(_subs([])).shape == (0,)


def test_equal_weights():
    rule = make("aggregation", "equal")
    np.testing.assert_allclose(rule.weights(_subs([9, 0, 1, 5])), [0.25] * 4, atol=1e-15)
    assert rule.weights(_subs([])).shape == (0,)


# --- pricing, verification, privacy, submission ------------------------------------


def test_fixed_pricing_returns_list_prices():
    m = FeedMarket(
        list_prices=np.array([2.0, 5.0]), current=np.array([3.0, 1.0]), demand=np.array([4, 0])
    )
    prices = make("pricing", "fixed").prices(m)
    np.testing.assert_array_equal(prices, [2.0, 5.0])
    prices[0] = 99.0  # a copy: the market's list prices are untouched
    assert m.list_prices[0] == 2.0


def test_no_verification_checks_nothing():
    v = VerificationInput(
        did_work=np.array([True, False, False]),
        deposits=np.array([1.0, 2.0, 3.0]),
        steps=np.array([10, 20, 30]),
    )
    out = make("verification", "none").verify(v, np.random.default_rng(0))
    np.testing.assert_array_equal(out.caught, [False, False, False])
    np.testing.assert_array_equal(out.checked, [False, False, False])
    np.testing.assert_array_equal(out.fees, [0.0, 0.0, 0.0])


def test_plaintext_leaks_and_costs_nothing():
    rule = make("privacy", "plaintext")
    assert rule.leaks is True
    assert rule.secure is False
    cost = rule.training_cost(TrainingJob(10_000, np.array([3, 0]), 4, 50, 0.1))
    for name in ("seconds", "bytes_sent", "fee", "compute_seconds"):
        np.testing.assert_array_equal(getattr(cost, name), [0.0, 0.0])
    x = np.ones((2, 3, 4))
    assert rule.perturb(x, np.random.default_rng(0)) is x


def test_open_submission_is_visible():
    assert make("submission", "open").visible_before_close() is True


@pytest.mark.parametrize(
    ("family", "name", "params"),
    [
        ("reward", "numerai", {"clip": 0.0}),
        ("reward", "numerai", {"w_mmc": -1.0}),
        ("reward", "numerai", {"payout_target": -5.0}),
        ("reward", "numerai", {"clip": "0.05"}),
        ("reward", "stake_proportional", {"clip": 1.5}),
        ("slashing", "burn_negative", {"cascade_to_providers": 2.0}),
    ],
)
def test_out_of_range_params_are_rejected(family, name, params):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=next(iter(params))):
        make(family, name, **params)
