"""Unit tests of the contribution reward rules: shapley, banzhaf, leave_one_out,
threshold_bounty, deposit_refund_take, prediction_market."""

import numpy as np
import pytest
from pydantic import ValidationError

from mechanisms.base import ResolvedRound
from mechanisms.registry import REWARD, load_all
from mechanisms.reward import market_settlement, values_to_payouts
from mechanisms.scoring import (
    correlation_contribution_rows,
    numerai_corr,
    numerai_corr_rows,
    rank_gaussianize_rows,
)
from mechanisms.valuation import (
    TabularGame,
    all_coalitions,
    exact_banzhaf,
    exact_shapley,
    metamodel_game,
)

load_all()


def make_round(P, target, stakes, budget=100.0, weights=None, **kw):
    """The ResolvedRound the engine builds (stake-weighted metamodel by default)."""
    P = np.asarray(P, dtype=float)
    stakes = np.asarray(stakes, dtype=float)
    if weights is None:
        weights = stakes / stakes.sum() if stakes.sum() > 0 else np.full(len(stakes), 1 / len(P))
    meta = weights @ rank_gaussianize_rows(P)
    return ResolvedRound(
        predictions=P,
        target=np.asarray(target, dtype=float),
        stakes=stakes,
        meta=meta,
        weights=np.asarray(weights, dtype=float),
        corr=numerai_corr_rows(P, target),
        mmc=correlation_contribution_rows(P, meta, target),
        budget=budget,
        **kw,
    )


def scored_round(corr, budget=100.0, **kw):
    """A round whose only meaningful field is ``corr`` (for rules that read just it)."""
    n = len(corr)
    z = np.zeros((n, 3))
    return ResolvedRound(
        predictions=z,
        target=np.arange(3.0),
        stakes=kw.pop("stakes", np.ones(n)),
        meta=np.zeros(3),
        weights=np.full(n, 1 / n),
        corr=np.asarray(corr, dtype=float),
        mmc=np.zeros(n),
        budget=budget,
        **kw,
    )


def signal_round(n, A=50, seed=0, budget=100.0, **kw):
    rng = np.random.default_rng(seed)
    t = rng.normal(size=A)
    P = 0.5 * t[None] + rng.normal(size=(n, A))
    stakes = rng.uniform(1, 10, n)
    return make_round(P, t, stakes, budget, **kw)


# --- the shared value-to-token conversion -----------------------------------------


def test_values_to_payouts_by_hand():
    # budget 80, budget_share 0.5 -> 40 tokens shared by the positive values 0.3, 0.1
    #   (sum 0.4): 40 * 0.3 / 0.4 = 30, 40 * 0.1 / 0.4 = 10
    # value -0.01, stake 100, penalty 2, scale 0.1: -2 * 100 * min(0.1, 0.25) = -20
    # value -1.0 hits the clip: -2 * 100 * min(10, 0.25) = -50
    out = values_to_payouts(
        np.array([0.3, 0.1, 0.0, -0.01, -1.0]),
        np.array([10.0, 10, 10, 100, 100]),
        80.0,
        budget_share=0.5,
        penalty=2.0,
        scale=0.1,
        clip=0.25,
    )
    np.testing.assert_allclose(out, [30.0, 10.0, 0.0, -20.0, -50.0])
    # no positive value: nobody is paid; a negative budget pays nothing
    out = values_to_payouts(
        np.array([-0.1, 0.0]), np.ones(2), -5.0, budget_share=1, penalty=1, scale=1, clip=1
    )
    np.testing.assert_allclose(out, [-0.1, 0.0])


# --- shapley / banzhaf / leave_one_out --------------------------------------------


def test_shapley_rule_two_submissions_by_hand():
    # n = 2: phi_1 = (CORR_1 + U(12) - CORR_2) / 2, phi_2 = (CORR_2 + U(12) - CORR_1) / 2
    # with U(12) = numerai_corr(meta) (the stake-weighted metamodel).
    r = signal_round(2, seed=1)
    u12 = numerai_corr(r.meta, r.target)
    c1, c2 = r.corr
    rule = REWARD.build("shapley", {})
    phi = rule.values(r)
    np.testing.assert_allclose(phi, [(c1 + u12 - c2) / 2, (c2 + u12 - c1) / 2], atol=1e-12)
    expected = values_to_payouts(
        phi, r.stakes, r.budget, budget_share=1.0, penalty=1.0, scale=1.0, clip=0.25
    )
    np.testing.assert_allclose(rule.payouts(r), expected)


def test_linear_utility_payouts_by_hand():
    # A = 4, target 0..3: the increasing prediction has term +0.471211 and the reversed
    # one -0.471211 (see test_valuation.test_linear_terms_by_hand), weights 1/2 each.
    # The positive one takes the whole budget 10; the negative one owes
    # penalty * stake * min(0.471211 / scale, clip) = 1 * 4 * 0.25 = 1.
    r = make_round([[1.0, 2, 3, 4], [4.0, 3, 2, 1]], np.arange(4.0), [4.0, 4.0], budget=10.0)
    for name in ("shapley", "banzhaf", "leave_one_out"):
        rule = REWARD.build(name, {"utility": "linear"})
        np.testing.assert_allclose(rule.values(r), [0.471211, -0.471211], atol=1e-6)
        np.testing.assert_allclose(rule.payouts(r), [10.0, -1.0])


def test_shapley_rule_is_exact_then_monte_carlo_and_efficient():
    r = signal_round(9, seed=2)
    game = metamodel_game(r.predictions, r.weights, r.target)
    full = numerai_corr(r.meta, r.target)
    exact = REWARD.build("shapley", {"exact_max": 9}).values(r)
    np.testing.assert_allclose(exact, exact_shapley(game), atol=1e-15)
    mc_rule = REWARD.build("shapley", {"exact_max": 8, "permutations": 2000, "tolerance": 0.0})
    mc = mc_rule.values(r)
    assert mc.sum() == pytest.approx(full, abs=1e-12)
    assert np.abs(mc - exact).max() < 0.01
    # Monte Carlo draws are a function of (seed, round): same round, same values
    np.testing.assert_array_equal(mc, mc_rule.values(r))
    other = signal_round(9, seed=2, round=1)
    assert not np.array_equal(mc, mc_rule.values(other))


def test_banzhaf_and_loo_rules():
    r = signal_round(6, seed=3)
    game = metamodel_game(r.predictions, r.weights, r.target)
    np.testing.assert_allclose(
        REWARD.build("banzhaf", {}).values(r), exact_banzhaf(game), atol=1e-15
    )
    msr = REWARD.build("banzhaf", {"exact_max": 0, "samples": 50_000}).values(r)
    assert np.abs(msr - exact_banzhaf(game)).max() < 0.02
    masks = np.vstack([np.ones((1, 6), bool), ~np.eye(6, dtype=bool)])
    u = game.values(masks)[0]
    np.testing.assert_allclose(REWARD.build("leave_one_out", {}).values(r), u[0] - u[1:])


def test_duplicates_loo_gives_zero_shapley_splits():
    # Two identical submissions, equal stakes: U(1) = U(2) = U(12) = CORR.
    # LOO_i = U(12) - U(j) = 0 for both (MECHANISMS.md: "LOO gives each copy ~0");
    # Shapley_i = CORR / 2 each.
    rng = np.random.default_rng(4)
    t = rng.normal(size=40)
    p = t + rng.normal(size=40)
    r = make_round([p, p], t, [5.0, 5.0])
    np.testing.assert_allclose(REWARD.build("leave_one_out", {}).values(r), [0, 0], atol=1e-12)
    c = numerai_corr(p, t)
    np.testing.assert_allclose(REWARD.build("shapley", {}).values(r), [c / 2, c / 2])


def test_shapley_is_not_sybil_proof():
    # Splitting submission 0 into two copies (stake halved) changes what the group is
    # paid: Shapley shares the budget by value, and the copies' values depend on how
    # many copies there are. The rule therefore does not claim sybil_proof.
    assert "sybil_proof" not in REWARD.get("shapley").claims
    r = signal_round(3, seed=5)
    rule = REWARD.build("shapley", {})
    before = rule.payouts(r)
    P = np.vstack([r.predictions[:1], r.predictions])
    stakes = np.concatenate([[r.stakes[0] / 2, r.stakes[0] / 2], r.stakes[1:]])
    after = rule.payouts(make_round(P, r.target, stakes))
    assert abs(after[:2].sum() - before[0]) > 1e-3


# --- threshold_bounty --------------------------------------------------------------


def test_threshold_bounty_by_hand():
    # CORR 0.02, 0.05, 0.05, -0.1; order 3, 2, 1, 0 (submission 3 came first).
    # Eligible at threshold 0.01: 0, 1, 2; best 0.05 tied by 1 and 2; 2 is earlier.
    rule = REWARD.build("threshold_bounty", {"threshold": 0.01})
    r = scored_round([0.02, 0.05, 0.05, -0.1], budget=100.0, order=np.array([3, 2, 1, 0]))
    np.testing.assert_allclose(rule.payouts(r), [0, 0, 100, 0])
    # without an order, index order: 1 wins the tie
    r = scored_round([0.02, 0.05, 0.05, -0.1], budget=100.0)
    np.testing.assert_allclose(rule.payouts(r), [0, 100, 0, 0])
    # nobody at 0.06: nothing is paid (the bounty is refunded to the treasury)
    high = REWARD.build("threshold_bounty", {"threshold": 0.06})
    np.testing.assert_allclose(high.payouts(r), [0, 0, 0, 0])
    # a fixed bounty, capped by the budget; a share of the budget
    fixed = REWARD.build("threshold_bounty", {"threshold": 0.01, "bounty_amount": 30.0})
    assert fixed.payouts(r)[1] == 30.0
    capped = REWARD.build("threshold_bounty", {"threshold": 0.01, "bounty_amount": 500.0})
    assert capped.payouts(r)[1] == 100.0
    half = REWARD.build("threshold_bounty", {"threshold": 0.01, "bounty_share": 0.5})
    assert half.payouts(r)[1] == 50.0


def test_threshold_bounty_meets_threshold_inclusively():
    rule = REWARD.build("threshold_bounty", {"threshold": 0.05})
    np.testing.assert_allclose(rule.payouts(scored_round([0.05, 0.04], budget=7.0)), [7, 0])


# --- deposit_refund_take -----------------------------------------------------------


def test_deposit_refund_take_by_hand():
    # 4 submissions in a round of 14,400 s: dt = 3,600 s, sqrt(dt) = 60;
    # deposit = min(stake, 2 * 60 / 60 = 2) = 2, 2, 1 (stake 1), 2.
    # CORR 0.1, -0.2, 0.3, -0.1 -> good, bad, good, bad. Submitters a, b, c, a.
    # numGood before: b = 2 (history). After the refunds: a = 1, b = 2, c = 1; T = 4.
    # Bad deposits: b's 2 (submission 1) and a's 2 (submission 3): 4 in all.
    # Takes: a: 1/4 * (4 - 2) = 0.5 (not its own), b: 2/4 * (4 - 2) = 1.0,
    #        c: 1/4 * (4 - 0) = 1.0.
    # a's 0.5 is shared over its two submissions by deposit (2, 2): 0.25 each.
    # payouts: 0.25, 1.0 - 2 = -1.0, 1.0, 0.25 - 2 = -1.75 (the treasury keeps 4 - 2.5)
    rule = REWARD.build(
        "deposit_refund_take",
        {"cost_weight": 2.0, "cost_constant": 60.0, "round_seconds": 14_400.0},
    )
    rule.num_good = {"b": 2}
    r = scored_round(
        [0.1, -0.2, 0.3, -0.1],
        stakes=np.array([10.0, 10, 1, 10]),
        submitters=np.array(["a", "b", "c", "a"]),
    )
    np.testing.assert_allclose(rule.deposits(r), [2, 2, 1, 2])
    np.testing.assert_allclose(rule.payouts(r), [0.25, -1.0, 1.0, -1.75])
    assert rule.num_good == {"a": 1, "b": 2, "c": 1}
    # settle is pure: the same state and round give the same answer, state untouched
    out, new = rule.settle({"b": 2}, r)
    np.testing.assert_allclose(out, [0.25, -1.0, 1.0, -1.75])
    assert new == {"a": 1, "b": 2, "c": 1}


def test_deposit_refund_take_contract_constant_and_rationality():
    # contract: costWeight * 3600 / sqrt(dt); one week, 2 submissions: dt = 302,400 s
    # deposit = 1 * 3600 / 549.909 = 6.5466 (simulator constant 60: 0.10911)
    r = scored_round([0.1, -0.1], stakes=np.array([100.0, 100.0]))
    contract = REWARD.build("deposit_refund_take", {"cost_constant": 3600.0})
    np.testing.assert_allclose(contract.deposits(r), [6.546537] * 2, rtol=1e-6)
    sim = REWARD.build("deposit_refund_take", {})
    np.testing.assert_allclose(sim.deposits(r), [0.1091089] * 2, rtol=1e-6)
    # without ids nothing is stored; a good submission never loses (individual rationality)
    out = sim.payouts(r)
    assert sim.num_good == {}
    assert out[0] >= 0 and out[1] == pytest.approx(-0.1091089, rel=1e-6)


# --- prediction_market -------------------------------------------------------------


def table_accuracy(table: dict):
    """accuracy(idx) from {frozenset of contributions: accuracy}."""

    def accuracy(idx):
        return np.array([table[frozenset(idx[: j + 1].tolist())] for j in range(len(idx))])

    return accuracy


def test_market_settlement_by_hand():
    # Contributions a (0), b (1), c (2) in this order, deposit 1 each, bounty 15.
    # Accuracy: {a} 0.2, {a,b} 0.1, {a,b,c} 0.4, {a,c} 0.5.
    # Phase 1: scores a 0.2, b -0.1, c 0.3. b is lowest: t = 1 / 0.1 = 10 rounds
    #   (15 left -> 5). Balances: a 1 + 2 = 3, b 0, c 1 + 3 = 4.
    # Phase 2 without b: a 0.2, c 0.5 - 0.2 = 0.3, none negative: the 5 rounds left
    #   pay a 1, c 1.5. Balances a 4, b 0, c 5.5 -> net 3, -1, 4.5
    #   (the bounty paid 10 * 0.4 + 5 * 0.5 = 6.5 = 3 - 1 + 4.5).
    acc = table_accuracy(
        {
            frozenset({0}): 0.2,
            frozenset({0, 1}): 0.1,
            frozenset({0, 1, 2}): 0.4,
            frozenset({0, 2}): 0.5,
        }
    )
    owner, seq = np.arange(3), np.arange(3)
    for removal in ("lowest_score", "first_to_zero"):
        net = market_settlement(np.ones(3), owner, seq, acc, 15.0, removal)
        np.testing.assert_allclose(net, [3.0, -1.0, 4.5])
    # bounty 8 < 10: the first phase stops early: t = 8; a 1 + 1.6, b 1 - 0.8, c 1 + 2.4
    net = market_settlement(np.ones(3), owner, seq, acc, 8.0)
    np.testing.assert_allclose(net, [1.6, -0.8, 2.4])


def test_market_settlement_removal_rules_differ():
    # Additive gains a 0.3, b -0.1, c -0.2; deposits a 1, b 0.2, c 1; bounty 100.
    # lowest_score: c out first, t = 1 / 0.2 = 5: a 2.5, b 0.2 - 0.5 = -0.3, c 0.
    #   b's balance went below 0 (the simulator's refund of it is 0).
    # first_to_zero: b first, t = 0.2 / 0.1 = 2: a 1.6, b 0, c 0.6; then c, t = 3.
    # Either way a then alone earns the rest; the two rules differ in the path, and
    # the intermediate balance of b is negative only under lowest_score.
    gains = np.array([0.3, -0.1, -0.2])

    def acc(idx):
        return np.cumsum(gains[idx])

    dep = np.array([1.0, 0.2, 1.0])
    for removal in ("lowest_score", "first_to_zero"):
        net = market_settlement(dep, np.arange(3), np.arange(3), acc, 100.0, removal)
        # a: 1 + 0.3 * 100 (every round it is alive pays 0.3) = 31 -> net 30
        np.testing.assert_allclose(net, [30.0, -0.2, -1.0])
    with pytest.raises(ValueError):
        market_settlement(dep, np.arange(3), np.arange(3), acc, 1.0, "nope")


def test_prediction_market_rule_rewards_signal_and_burns_noise():
    # One good submission (the target plus noise) and one harmful one (its mirror),
    # submitted first and second; stakes 10, bounty 100.
    rng = np.random.default_rng(6)
    t = rng.normal(size=50)
    good = t + 0.5 * rng.normal(size=50)
    r = make_round([good, -good + 0.1 * rng.normal(size=50)], t, [10.0, 10.0])
    out = REWARD.build("prediction_market", {}).payouts(r)
    assert out[0] > 0 and out[1] == pytest.approx(-10.0)
    # the order matters: the same submissions replayed the other way round
    rev = make_round(r.predictions, t, [10.0, 10.0], order=np.array([1, 0]))
    assert not np.allclose(REWARD.build("prediction_market", {}).payouts(rev), out)
    # no bounty and nobody negative: nothing moves
    solo = make_round([good], t, [10.0], budget=0.0)
    np.testing.assert_allclose(REWARD.build("prediction_market", {}).payouts(solo), [0.0])


def test_prediction_market_ids_group_submissions():
    # two submissions of one submitter are one market participant; its net is shared
    # over them by deposit
    r = signal_round(4, seed=7, submitters=np.array([1, 1, 2, 3]))
    out = REWARD.build("prediction_market", {}).payouts(r)
    assert out[0] / out[1] == pytest.approx(r.stakes[0] / r.stakes[1])


# --- bad parameters ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("shapley", {"tolerance": 1.0}),
        ("shapley", {"permutations": 0}),
        ("shapley", {"permutations": 10.5}),
        ("shapley", {"utility": "mse"}),
        ("shapley", {"exact_max": 21}),
        ("shapley", {"budget_share": 1.5}),
        ("shapley", {"scale": 0.0}),
        ("banzhaf", {"samples": 0}),
        ("banzhaf", {"penalty": -1.0}),
        ("leave_one_out", {"clip": 0.0}),
        ("leave_one_out", {"permutations": 10}),
        ("threshold_bounty", {"threshold": 2.0}),
        ("threshold_bounty", {"bounty_amount": -1.0}),
        ("threshold_bounty", {"bounty_share": "1"}),
        ("deposit_refund_take", {"cost_constant": 0.5}),
        ("deposit_refund_take", {"round_seconds": 0.0}),
        ("deposit_refund_take", {"good_threshold": -2.0}),
        ("prediction_market", {"removal": "all"}),
        ("prediction_market", {"deposit_share": 1.5}),
    ],
)
def test_bad_parameters_are_rejected(name, params):
    with pytest.raises(ValidationError):
        REWARD.build(name, params)


def test_claims_are_declared_honestly():
    claims = {name: REWARD.get(name).claims for name in REWARD.names()}
    for name in ("shapley", "banzhaf", "leave_one_out"):
        assert claims[name] == {"budget_balanced"}
    assert claims["threshold_bounty"] == {"budget_balanced", "sybil_proof"}
    assert claims["deposit_refund_take"] == frozenset()
    assert claims["prediction_market"] == frozenset()


def test_tabular_sanity_of_the_rule_game():
    # the rule's game is the metamodel game: its table over 3 submissions, by
    # enumeration, gives the same Shapley values as the rule
    r = signal_round(3, seed=8)
    game = metamodel_game(r.predictions, r.weights, r.target)
    table = TabularGame(game.values(all_coalitions(3))[0])
    np.testing.assert_allclose(REWARD.build("shapley", {}).values(r), exact_shapley(table))
