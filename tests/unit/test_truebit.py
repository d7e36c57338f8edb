"""The ``truebit`` verification rule: hand-computed rounds, rates and the verifier's dilemma.

Oracles: the verification game's binary search takes ceil(log2(steps)) rounds
(Teutsch & Reitwiessner 2017, "A scalable verification solution for blockchains");
without forced errors checking stops paying when nobody cheats (the verifier's
dilemma, ibid. and Luu et al. 2015); with a tax-funded jackpot the jackpot pays out
what the taxes bring in, so checking settles where its cost equals the tax
(MECHANISMS.md, "Truebit").
"""

import math

import numpy as np
import pytest
from pydantic import ValidationError

from mechanisms.base import VerificationInput, VerificationOutcome
from mechanisms.registry import VERIFICATION, load_all
from mechanisms.verification import Truebit, dispute_rounds

load_all()


def make(**params) -> Truebit:
    return VERIFICATION.build("truebit", params)


def claims(did_work, deposits=None, steps=100, jackpot=None) -> VerificationInput:
    did_work = np.asarray(did_work, dtype=bool)
    n = did_work.shape[0]
    return VerificationInput(
        did_work=did_work,
        deposits=np.ones(n) if deposits is None else np.asarray(deposits, dtype=float),
        steps=np.broadcast_to(np.asarray(steps), (n,)),
        jackpot=jackpot,
    )


# --- the verification game ---------------------------------------------------------


def test_dispute_rounds_are_ceil_log2_of_steps():
    steps = np.array([1, 2, 3, 4, 5, 8, 9, 1000, 1024, 1025, 2**40, 2**40 + 1])
    expected = [1, 1, 2, 2, 3, 3, 4, 10, 10, 11, 40, 41]
    np.testing.assert_array_equal(dispute_rounds(steps), expected)
    for s in range(2, 300):
        assert dispute_rounds(np.array([s]))[0] == math.ceil(math.log2(s))


def test_caught_cheat_pays_log2_rounds_of_fees():
    rule = make(check_probability=1.0, forced_error_rate=0.0, dispute_fee_per_round=0.25)
    out = rule.verify(
        claims([False, True, False], steps=np.array([1000, 1000, 9])), np.random.default_rng(0)
    )
    np.testing.assert_array_equal(out.caught, [True, False, True])
    np.testing.assert_array_equal(out.dispute_rounds, [10, 0, 4])
    np.testing.assert_allclose(out.fees, [2.5, 0.0, 1.0])


# --- who is caught -----------------------------------------------------------------


def test_lazy_solver_caught_when_checked_and_not_otherwise():
    did_work = [True, False, True, False]
    always = make(check_probability=1.0, forced_error_rate=0.0).verify(
        claims(did_work), np.random.default_rng(1)
    )
    np.testing.assert_array_equal(always.checked, [True] * 4)
    np.testing.assert_array_equal(always.caught, [False, True, False, True])
    never = make(check_probability=0.0, forced_error_rate=0.0).verify(
        claims(did_work), np.random.default_rng(1)
    )
    np.testing.assert_array_equal(never.checked, [False] * 4)
    np.testing.assert_array_equal(never.caught, [False] * 4)
    np.testing.assert_array_equal(never.dispute_rounds, [0] * 4)


def test_seeded_round_matches_the_documented_draws():
    # Draw order: one uniform per claim for the forced error, then one for the check.
    did_work = np.array([True, False, False, True, False, True, False, True])
    rule = make(check_probability=0.5, forced_error_rate=0.3)
    out = rule.verify(claims(did_work), np.random.default_rng(42))
    ref = np.random.default_rng(42)
    forced = ref.random(8) < 0.3
    checked = ref.random(8) < 0.5
    np.testing.assert_array_equal(out.forced, forced)
    np.testing.assert_array_equal(out.checked, checked)
    np.testing.assert_array_equal(out.caught, checked & ~did_work)
    assert out.check_rate == 0.5


def test_forced_error_is_caught_and_paid_from_the_jackpot():
    rule = make(
        check_probability=1.0, forced_error_rate=1.0, jackpot_share=0.5, tax_rate=0.0, verifiers=1
    )
    out = rule.verify(
        claims([True, True], deposits=[4.0, 4.0], jackpot=100.0), np.random.default_rng(0)
    )
    np.testing.assert_array_equal(out.forced, [True, True])
    # not the solvers' fault: nothing forfeited, no dispute, no fee
    np.testing.assert_array_equal(out.caught, [False, False])
    np.testing.assert_array_equal(out.dispute_rounds, [0, 0])
    np.testing.assert_array_equal(out.fees, [0.0, 0.0])
    # two caught forced errors, each paying half of what is left: 100 * (1 - 0.5**2)
    assert out.jackpot_paid == pytest.approx(75.0)
    assert out.verifier_reward == pytest.approx(75.0)
    assert rule.jackpot == pytest.approx(25.0)


def test_unchecked_forced_error_pays_nothing():
    rule = make(check_probability=0.0, forced_error_rate=1.0, tax_rate=0.0)
    out = rule.verify(claims([True, True], jackpot=100.0), np.random.default_rng(0))
    assert out.forced.all() and not out.checked.any()
    assert out.jackpot_paid == 0.0 and out.verifier_reward == 0.0
    assert rule.jackpot == 100.0


def test_lazy_solver_with_forced_error_is_caught_and_the_jackpot_pays():
    rule = make(
        check_probability=1.0,
        forced_error_rate=1.0,
        jackpot_share=0.25,
        tax_rate=0.5,
        task_reward=2.0,
        check_cost=0.1,
        verifiers=1,
    )
    out = rule.verify(
        claims([False], deposits=[3.0], steps=16, jackpot=9.0), np.random.default_rng(0)
    )
    assert out.caught.tolist() == [True] and out.forced.tolist() == [True]
    assert out.dispute_rounds.tolist() == [4]
    # jackpot before payout: 9 + tax 1.0 = 10; a quarter of it is paid
    assert out.jackpot_paid == pytest.approx(2.5)
    assert out.verifier_reward == pytest.approx(2.5 + 3.0)
    assert out.verifier_cost == pytest.approx(0.1)
    assert rule.jackpot == pytest.approx(7.5)


def test_forfeited_deposits_go_to_the_verifiers_and_checks_cost():
    rule = make(check_probability=1.0, forced_error_rate=0.0, check_cost=0.2, verifiers=1)
    out = rule.verify(
        claims([False, True, False], deposits=[2.0, 5.0, 3.0]), np.random.default_rng(0)
    )
    assert out.jackpot_paid == 0.0
    assert out.verifier_reward == pytest.approx(5.0)  # 2 + 3, not the honest 5
    assert out.verifier_cost == pytest.approx(3 * 0.2)


# --- taxes and the jackpot tally ---------------------------------------------------


def test_taxes_sum_into_the_jackpot_tally():
    rule = make(check_probability=0.0, tax_rate=0.3, task_reward=2.0, forced_error_rate=0.5)
    rng = np.random.default_rng(3)
    for _ in range(3):
        out = rule.verify(claims([True] * 4), rng)
        np.testing.assert_allclose(out.tax, [0.6] * 4)
    assert rule.jackpot == pytest.approx(3 * 4 * 0.6)


def test_jackpot_passed_in_overrides_the_tally():
    rule = make(check_probability=0.0, tax_rate=1.0, task_reward=1.0)
    rule.verify(claims([True] * 2), np.random.default_rng(0))
    assert rule.jackpot == pytest.approx(2.0)
    rule.verify(claims([True] * 2, jackpot=10.0), np.random.default_rng(0))
    assert rule.jackpot == pytest.approx(12.0)


# --- redundant checks by several verifiers -----------------------------------------


def test_redundancy_of_independent_verifiers():
    assert make(verifiers=1).redundancy(0.7) == 1.0
    assert make(verifiers=4).redundancy(1.0) == pytest.approx(4.0)
    assert make(verifiers=4).redundancy(0.0) == 1.0
    # V = 2, q = 1/2: p = 1 - sqrt(1/2), E[k | k >= 1] = 2 p / q
    assert make(verifiers=2).redundancy(0.5) == pytest.approx(4 * (1 - math.sqrt(0.5)))
    rule = make(check_probability=1.0, forced_error_rate=0.0, check_cost=0.5, verifiers=3)
    out = rule.verify(claims([True] * 4), np.random.default_rng(0))
    assert out.verifier_cost == pytest.approx(4 * 0.5 * 3)


def test_redundancy_matches_a_simulated_pool():
    V, q = 5, 0.6
    p = 1 - (1 - q) ** (1 / V)
    k = np.random.default_rng(11).binomial(V, p, size=200_000)
    assert (k >= 1).mean() == pytest.approx(q, abs=0.005)
    assert k[k >= 1].mean() == pytest.approx(make(verifiers=V).redundancy(q), rel=0.01)


# --- learning the check probability ------------------------------------------------


def test_check_probability_update_is_hand_computed():
    rule = make(
        check_probability=0.5, forced_error_rate=0.0, check_cost=0.5, verifiers=1, adaptation=0.1
    )
    out = rule.verify(claims([True] * 4), np.random.default_rng(5))
    k = int(out.checked.sum())
    assert out.verifier_cost == pytest.approx(0.5 * k)
    # q + a * (reward - cost) / (n * check_cost) = 0.5 + 0.1 * (0 - 0.5 k) / 2
    assert rule.check_probability == pytest.approx(0.5 - 0.025 * k)


def test_profitable_round_raises_the_check_probability():
    rule = make(
        check_probability=0.5, forced_error_rate=0.0, check_cost=1.0, verifiers=1, adaptation=0.1
    )
    out = rule.verify(claims([False] * 10, deposits=[10.0] * 10), np.random.default_rng(2))
    k = int(out.checked.sum())
    assert 0 < k < 10
    assert out.verifier_reward == pytest.approx(10.0 * k)
    # 0.5 + 0.1 * (10 k - k) / (10 * 1)
    assert rule.check_probability == pytest.approx(min(1.0, 0.5 + 0.09 * k))
    assert rule.check_probability > 0.5


def test_free_checking_with_a_reward_goes_to_full_checking():
    rule = make(check_probability=0.5, forced_error_rate=0.0, check_cost=0.0)
    out = rule.verify(claims([False] * 20), np.random.default_rng(0))
    assert out.caught.any() and out.verifier_cost == 0.0
    assert rule.check_probability == 1.0
    nothing = make(check_probability=0.3, forced_error_rate=0.0, check_cost=0.0)
    nothing.verify(claims([True, True]), np.random.default_rng(0))
    assert nothing.check_probability == 0.3


def test_no_claims_changes_nothing():
    rule = make(check_probability=0.4)
    out = rule.verify(claims([]), np.random.default_rng(0))
    assert out.caught.shape == out.checked.shape == out.fees.shape == (0,)
    assert out.tax.shape == out.forced.shape == out.dispute_rounds.shape == (0,)
    assert rule.check_probability == 0.4 and rule.jackpot == 0.0


def run_rounds(rule, rounds, n=100, seed=0, jackpot=None, lazy=0.0):
    rng = np.random.default_rng(seed)
    rates = []
    for _ in range(rounds):
        did_work = rng.random(n) >= lazy
        out = rule.verify(claims(did_work, jackpot=jackpot), rng)
        rates.append(out.check_rate)
    return np.array(rates)


def test_verifiers_dilemma_checking_collapses_without_forced_errors():
    rule = make(check_probability=0.8, forced_error_rate=0.0, adaptation=0.1)
    rates = run_rounds(rule, 60)
    assert (np.diff(rates) <= 0).all()  # nothing ever pays, so checking only falls
    # expected path: q_t shrinks by a factor of about (1 - a * redundancy) per round
    assert rates[10] < 0.8 * 0.9**10
    assert rule.check_probability < 0.005


def test_forced_errors_and_a_funded_jackpot_keep_checking_up():
    rule = make(check_probability=0.3, forced_error_rate=0.05, jackpot_share=0.1, adaptation=0.1)
    # the engine passes a jackpot of 1000: a check earns 0.05 * 0.1 * 1000 = 5 > 0.5 * V
    rates = run_rounds(rule, 60, jackpot=1000.0)
    assert rates[0] == 0.3
    assert rates[20:].min() > 0.9


# --- rates over many claims (statistical, tolerances stated) -------------------------


def test_forced_and_checked_rates_over_many_claims():
    n = 200_000
    rule = make(check_probability=0.3, forced_error_rate=0.05, adaptation=0.0)
    did_work = np.random.default_rng(9).random(n) >= 0.25
    out = rule.verify(claims(did_work), np.random.default_rng(10))
    # 5 binomial standard deviations
    for got, p, m in [
        (out.forced.mean(), 0.05, n),
        (out.checked.mean(), 0.3, n),
        (out.caught[~did_work].mean(), 0.3, int((~did_work).sum())),
        (out.checked[out.forced].mean(), 0.3, int(out.forced.sum())),
    ]:
        assert abs(got - p) < 5 * math.sqrt(p * (1 - p) / m)
    assert not out.caught[did_work].any()
    assert rule.check_probability == 0.3  # adaptation 0: no learning


@pytest.mark.parametrize(("tax", "expected"), [(0.25, 0.5), (0.15, 0.3)])
def test_tax_funded_checking_settles_where_the_tax_pays_for_it(tax, expected):
    # Steady state: the jackpot pays out the n * tax a round it takes in, so verifiers
    # earn n * tax against q * n * check_cost of checks: q* = tax / check_cost (V = 1).
    rule = make(
        check_probability=0.9,
        forced_error_rate=0.05,
        tax_rate=tax,
        task_reward=1.0,
        check_cost=0.5,
        verifiers=1,
        jackpot_share=1 / 3,
        adaptation=0.1,
    )
    rates = run_rounds(rule, 500, n=200, seed=4)
    # tolerance 0.03: the round-to-round spread of q here is about 0.015
    assert rates[200:].mean() == pytest.approx(expected, abs=0.03)


def test_same_seed_same_rounds():
    a, b = make(), make()
    ra = run_rounds(a, 30, seed=8, lazy=0.1)
    rb = run_rounds(b, 30, seed=8, lazy=0.1)
    np.testing.assert_array_equal(ra, rb)
    assert a.jackpot == b.jackpot


# --- outcome fields and parameters -------------------------------------------------


def test_outcome_fields_have_the_contract_shapes():
    out = make().verify(claims([True, False, True]), np.random.default_rng(0))
    assert isinstance(out, VerificationOutcome)
    assert out.caught.dtype == bool and out.checked.dtype == bool and out.forced.dtype == bool
    assert out.dispute_rounds.dtype.kind == "i"
    for a in (out.caught, out.checked, out.fees, out.forced, out.dispute_rounds, out.tax):
        assert a.shape == (3,)
    for x in (out.jackpot_paid, out.verifier_reward, out.check_rate, out.verifier_cost):
        assert isinstance(x, float) and x >= 0.0


def test_none_rule_leaves_the_new_fields_at_their_defaults():
    out = VERIFICATION.build("none").verify(claims([True, False]), np.random.default_rng(0))
    assert out.forced is None and out.dispute_rounds is None and out.tax is None
    assert out.jackpot_paid == out.verifier_reward == out.check_rate == out.verifier_cost == 0.0


def test_defaults():
    assert VERIFICATION.get("truebit").defaults() == {
        "check_probability": 0.5,
        "forced_error_rate": 0.02,
        "tax_rate": 1.0,
        "task_reward": 1.0,
        "check_cost": 0.5,
        "dispute_fee_per_round": 0.01,
        "verifiers": 3.0,
        "jackpot_share": 1 / 3,
        "adaptation": 0.1,
    }


@pytest.mark.parametrize(
    "params",
    [
        {"check_probability": 1.5},
        {"check_probability": -0.1},
        {"forced_error_rate": 1.01},
        {"tax_rate": -1.0},
        {"tax_rate": 101.0},
        {"task_reward": -1.0},
        {"check_cost": -0.5},
        {"dispute_fee_per_round": -0.01},
        {"verifiers": 0.5},
        {"jackpot_share": 2.0},
        {"adaptation": -0.1},
        {"adaptation": 1.5},
        {"tax_rate": "1.0"},
        {"rho": 0.1},
    ],
)
def test_bad_params_are_rejected(params):
    with pytest.raises(ValidationError) as exc:
        VERIFICATION.build("truebit", params)
    assert any(next(iter(params)) in map(str, e["loc"]) for e in exc.value.errors())
