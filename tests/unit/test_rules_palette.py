"""Hand-computed cases for the rule palette: slashing, aggregation, pricing, auctions,
commit-reveal submission and hosting.

Every expected number is worked out in the comment above it.
"""

import hashlib

import numpy as np
import pytest
from pydantic import ValidationError

from mechanisms.base import AuctionInput, FeedMarket, HostingInput, SlashInput, SubmissionSet
from mechanisms.hosting import GAS_PER_BYTE
from mechanisms.pricing import bancor_buy, bancor_sell, curve_reserve, curve_supply
from mechanisms.registry import load_all
from mechanisms.slashing import share_among_positive
from mechanisms.submission import commit, verify_reveal

REGISTRIES = load_all()


def make(family, name, **params):
    """Rule instance built by name from validated params, as a scenario builds it."""
    return REGISTRIES[family].build(name, params)


def arr(*xs):
    return np.array(xs, dtype=float)


# --- slashing ----------------------------------------------------------------------


def slash_in(payouts, stakes, scores=None, contributions=None):
    n = len(payouts)
    return SlashInput(
        payouts=np.asarray(payouts, float),
        stakes=np.asarray(stakes, float),
        scores=np.zeros(n) if scores is None else np.asarray(scores, float),
        contributions=None if contributions is None else np.asarray(contributions, float),
    )


def test_proportional_on_corr():
    # fraction 0.1, threshold 0: scores [0.02, -0.01, 0.0, -0.3] with stakes [100, 50, 40, 0]
    # below threshold: 1 (0.1 * 50 = 5) and 3 (0.1 * 0 = 0); a score of exactly 0 is not
    rule = make("slashing", "proportional", fraction=0.1, threshold=0.0)
    s = slash_in([1, -1, 0, 2], [100, 50, 40, 0], scores=[0.02, -0.01, 0.0, -0.3])
    np.testing.assert_allclose(rule.slash(s), [0, 5, 0, 0], atol=1e-12)
    assert rule.destination == "burn"


def test_proportional_threshold_above_zero_slashes_a_paid_submission():
    # threshold 0.01: score 0.0 < 0.01 -> 0.25 * 40 = 10 taken although the payout is +3
    rule = make("slashing", "proportional", fraction=0.25, threshold=0.01)
    s = slash_in([3.0, 1.0], [40, 40], scores=[0.0, 0.02])
    np.testing.assert_allclose(rule.slash(s), [10, 0], atol=1e-12)


def test_proportional_on_mmc_reads_contributions():
    # measure mmc: contributions [-0.02, 0.01] decide, the scores [0.5, -0.5] do not
    # -> [0.5 * 8, 0] = [4, 0]
    rule = make("slashing", "proportional", fraction=0.5, measure="mmc")
    s = slash_in([0, 0], [8, 8], scores=[0.5, -0.5], contributions=[-0.02, 0.01])
    np.testing.assert_allclose(rule.slash(s), [4, 0], atol=1e-12)
    with pytest.raises(ValueError, match="contributions"):
        rule.slash(slash_in([0, 0], [8, 8], scores=[0.5, -0.5]))


def test_full_on_negative_takes_the_whole_stake():
    # payouts [-0.01, 3, 0, -5] with stakes [100, 20, 30, 2] -> [100, 0, 0, 2]
    rule = make("slashing", "full_on_negative")
    taken = rule.slash(slash_in([-0.01, 3, 0, -5], [100, 20, 30, 2]))
    np.testing.assert_array_equal(taken, [100, 0, 0, 2])
    assert rule.destination == "burn"


def test_redistribute_takes_like_burn_negative_and_pays_the_positive():
    # payouts [6, -3, 2, -50], stakes [10, 10, 10, 20] -> taken [0, 3, 0, 20] (sum 23)
    # positive payouts 6 and 2 share 23: 23 * 6/8 = 17.25 and 23 * 2/8 = 5.75
    rule = make("slashing", "redistribute", cascade_to_providers=0.2)
    s = slash_in([6, -3, 2, -50], [10, 10, 10, 20])
    taken = rule.slash(s)
    np.testing.assert_array_equal(taken, [0, 3, 0, 20])
    np.testing.assert_array_equal(taken, make("slashing", "burn_negative").slash(s))
    np.testing.assert_allclose(
        share_among_positive(taken, s.payouts), [17.25, 0, 5.75, 0], atol=1e-12
    )
    assert rule.destination == "positive_contributors"
    assert type(rule).destination == "positive_contributors"
    assert rule.params.cascade_to_providers == 0.2


def test_share_among_positive_without_positive_payouts_gives_nothing():
    np.testing.assert_array_equal(share_among_positive(arr(3, 0), arr(-3, 0)), [0, 0])


def test_only_redistribute_sends_stake_to_contributors():
    dest = {i.name: i.cls.destination for i in REGISTRIES["slashing"]}
    assert dest == {
        "none": "burn",
        "burn_negative": "burn",
        "proportional": "burn",
        "full_on_negative": "burn",
        "redistribute": "positive_contributors",
    }


# --- aggregation -------------------------------------------------------------------


def subs(stakes, trailing=None, prices=None, score_var=None):
    stakes = np.asarray(stakes, float)
    n = len(stakes)
    return SubmissionSet(
        stakes=stakes,
        trailing_corr=np.zeros(n) if trailing is None else np.asarray(trailing, float),
        prices=None if prices is None else np.asarray(prices, float),
        score_var=None if score_var is None else np.asarray(score_var, float),
    )


def test_price_weighted():
    # prices [1, 3, 0, 4] / 8 = [0.125, 0.375, 0, 0.5]
    rule = make("aggregation", "price_weighted")
    w = rule.weights(subs([9, 9, 9, 9], prices=[1, 3, 0, 4]))
    np.testing.assert_allclose(w, [0.125, 0.375, 0.0, 0.5], atol=1e-15)


def test_price_weighted_falls_back_to_stakes_then_equal():
    rule = make("aggregation", "price_weighted")
    # no prices: stake weights [0, 2, 6] / 8
    np.testing.assert_allclose(rule.weights(subs([0, 2, 6])), [0, 0.25, 0.75], atol=1e-15)
    # prices all 0: equal
    np.testing.assert_allclose(rule.weights(subs([0, 2, 6], prices=[0, 0, 0])), [1 / 3] * 3)


def test_performance_weighted_power_and_floor():
    # power 2, floor 0.001: trailing [0.1, 0.2, -0.1, 0] -> raw [0.01, 0.04, 0.001, 0.001]
    # sum 0.052 -> [0.01/0.052, 0.04/0.052, 0.001/0.052, 0.001/0.052]
    rule = make("aggregation", "performance_weighted", power=2.0, floor=0.001)
    w = rule.weights(subs([1, 1, 1, 1], trailing=[0.1, 0.2, -0.1, 0.0]))
    np.testing.assert_allclose(w, np.array([0.01, 0.04, 0.001, 0.001]) / 0.052, atol=1e-15)


def test_performance_weighted_without_floor():
    rule = make("aggregation", "performance_weighted", power=1.0, floor=0.0)
    # [0.1, 0.3, -0.2] -> [0.1, 0.3, 0] / 0.4 = [0.25, 0.75, 0]
    w = rule.weights(subs([5, 0, 9], trailing=[0.1, 0.3, -0.2]))
    np.testing.assert_allclose(w, [0.25, 0.75, 0.0], atol=1e-15)
    # nobody positive: equal
    w = rule.weights(subs([5, 0, 9], trailing=[0.0, -0.3, -0.2]))
    np.testing.assert_allclose(w, [1 / 3] * 3, atol=1e-15)
    # power 0: equal among the positive scorers
    rule0 = make("aggregation", "performance_weighted", power=0.0, floor=0.0)
    w = rule0.weights(subs([1, 1, 1], trailing=[0.01, 0.5, -0.2]))
    np.testing.assert_allclose(w, [0.5, 0.5, 0.0], atol=1e-15)


def test_inverse_variance_is_mean_over_variance():
    # mean [0.02, 0.04, -0.01], var [0.0004, 0.0016, 0.0001]
    # raw = max(mean, 0) / var = [50, 25, 0] -> [2/3, 1/3, 0]
    rule = make("aggregation", "inverse_variance")
    w = rule.weights(
        subs([1, 1, 1], trailing=[0.02, 0.04, -0.01], score_var=[0.0004, 0.0016, 0.0001])
    )
    np.testing.assert_allclose(w, [2 / 3, 1 / 3, 0.0], atol=1e-12)


def test_inverse_variance_floor_and_fallbacks():
    rule = make("aggregation", "inverse_variance", var_floor=1e-4)
    # var [0, 0.01] -> floored [1e-4, 0.01] -> raw [0.01/1e-4, 0.01/0.01] = [100, 1]
    w = rule.weights(subs([1, 1], trailing=[0.01, 0.01], score_var=[0.0, 0.01]))
    np.testing.assert_allclose(w, [100 / 101, 1 / 101], atol=1e-12)
    # no variances: proportional to max(mean, 0): [0.02, 0.06, 0] / 0.08
    w = rule.weights(subs([1, 1, 1], trailing=[0.02, 0.06, -0.1]))
    np.testing.assert_allclose(w, [0.25, 0.75, 0.0], atol=1e-12)
    # no positive mean: minimum variance, 1/var = [100, 25] -> [0.8, 0.2]
    w = rule.weights(subs([1, 1], trailing=[0.0, -0.1], score_var=[0.01, 0.04]))
    np.testing.assert_allclose(w, [0.8, 0.2], atol=1e-12)
    # neither: equal
    np.testing.assert_allclose(rule.weights(subs([1, 1], trailing=[0, -1])), [0.5, 0.5])


@pytest.mark.parametrize("name", ["price_weighted", "performance_weighted", "inverse_variance"])
def test_new_aggregations_handle_no_submissions(name):
    assert make("aggregation", name).weights(subs([], score_var=[], prices=[])).shape == (0,)


# --- pricing: posted_adaptive ------------------------------------------------------


def test_posted_adaptive_moves_with_demand_within_bounds():
    # step 0.1, target 3, floor 0.5, cap 2, list 10 everywhere:
    #   current 10, demand 5 (> 3)  -> 11
    #   current 10, demand 0        -> 9
    #   current 19, demand 4        -> 20.9, capped at 2 * 10 = 20
    #   current 5.2, demand 0       -> 4.68, floored at 0.5 * 10 = 5
    #   current 0 (none yet), demand 2 (between) -> the list price 10
    rule = make("pricing", "posted_adaptive", step=0.1, target_demand=3.0, floor=0.5, cap=2.0)
    m = FeedMarket(
        list_prices=np.full(5, 10.0),
        current=arr(10, 10, 19, 5.2, 0),
        demand=np.array([5, 0, 4, 0, 2]),
    )
    np.testing.assert_allclose(rule.prices(m), [11, 9, 20, 5, 10], atol=1e-12)
    assert rule.auction is False


def test_posted_adaptive_uses_capacity_as_target():
    # capacity [2, 10], demand [3, 3]: excess on feed 0 only -> [11, 10]
    rule = make("pricing", "posted_adaptive", step=0.1)
    m = FeedMarket(
        list_prices=arr(10, 10),
        current=arr(10, 10),
        demand=np.array([3, 3]),
        capacity=np.array([2, 10]),
    )
    np.testing.assert_allclose(rule.prices(m), [11, 10], atol=1e-12)


def test_posted_adaptive_converges_to_its_bounds():
    rule = make("pricing", "posted_adaptive", step=0.2, floor=0.25, cap=4.0)
    lp = arr(2.0)
    for demand, bound in ((100, 8.0), (0, 0.5)):
        price = lp.copy()
        for _ in range(60):
            price = rule.prices(FeedMarket(lp, price, np.array([demand])))
            assert 0.5 <= price[0] <= 8.0
        assert price[0] == pytest.approx(bound)


# --- pricing: bonding curve and Bancor -----------------------------------------------


def test_bancor_hand_numbers():
    # S=100, R=1000, CW=0.5, deposit 210: 100 * (1.21 ** 0.5 - 1) = 100 * 0.1 = 10
    assert bancor_buy(100, 1000, 0.5, 210) == pytest.approx(10.0)
    # then S=110, R=1210, sell 10: 1210 * (1 - (100/110) ** 2) = 1210 - 1000 = 210
    assert bancor_sell(110, 1210, 0.5, 10) == pytest.approx(210.0)


@pytest.mark.parametrize(
    ("supply", "reserve", "cw", "deposit"),
    [(100, 1000, 0.5, 210), (3.0, 7.0, 0.2, 0.5), (1e4, 2.5e3, 1.0, 1e5), (50, 10, 0.9, 1e-6)],
)
def test_bancor_buy_then_sell_returns_the_deposit(supply, reserve, cw, deposit):
    # buy dS for dR, then sell dS at (S + dS, R + dR): (R + dR) * (1 - R / (R + dR)) = dR
    minted = bancor_buy(supply, reserve, cw, deposit)
    back = bancor_sell(supply + minted, reserve + deposit, cw, minted)
    assert back == pytest.approx(deposit, rel=1e-9)


@pytest.mark.parametrize(("m", "n", "s"), [(2.0, 1.0, 10.0), (3.0, 2.0, 4.0), (0.5, 0.0, 7.0)])
def test_power_curve_identity(m, n, s):
    # reserve m s^(n+1)/(n+1): (2, 1, 10) -> 100; (3, 2, 4) -> 3 * 64 / 3 = 64; (0.5, 0, 7) -> 3.5
    expected = {(2.0, 1.0, 10.0): 100.0, (3.0, 2.0, 4.0): 64.0, (0.5, 0.0, 7.0): 3.5}
    r = curve_reserve(m, n, s)
    assert r == pytest.approx(expected[(m, n, s)])
    cw = 1 / (n + 1)
    assert r / (s * cw) == pytest.approx(m * s**n)  # Bancor price = curve price
    assert curve_supply(m, n, r) == pytest.approx(s)


def test_bonding_curve_buy_sell_and_curator_gain():
    bc = make("pricing", "bonding_curve", slope=2.0, exponent=1.0)
    assert bc.connector_weight == 0.5
    # from 0 supply, 100 tokens: S = sqrt(2 * 100 / 2) = 10 shares
    assert bc.buy(0.0, 100.0) == pytest.approx(10.0)
    # at S=10 (R=100) a deposit of 44: S' = sqrt(144) = 12 -> 2 shares, = Bancor's formula
    assert bc.buy(10.0, 44.0) == pytest.approx(2.0)
    assert bancor_buy(10.0, 100.0, 0.5, 44.0) == pytest.approx(2.0)
    # the later curator sells its 2 shares at S=12: 144 * (1 - (10/12)^2) = 44
    assert bc.sell(12.0, 2.0) == pytest.approx(44.0)
    # the early curator sells its 10 at S=12: 144 * (1 - (2/12)^2) = 140 > the 100 it paid
    assert bc.sell(12.0, 10.0) == pytest.approx(140.0)


def test_bonding_curve_prices_follow_curation_above_list():
    # slope 2, exponent 1: curve [2 * 10, 2 * 10, 0] = [20, 20, 0]; list [1, 50, 1]
    # price = max(curve, list) = [20, 50, 1]
    bc = make("pricing", "bonding_curve", slope=2.0, exponent=1.0)
    m = FeedMarket(arr(1, 50, 1), arr(1, 50, 1), np.zeros(3, int), curation=arr(10, 10, 0))
    np.testing.assert_allclose(bc.prices(m), [20, 50, 1])
    # no curation at all: the list prices
    np.testing.assert_allclose(bc.prices(FeedMarket(arr(3, 4), arr(3, 4), np.zeros(2))), [3, 4])
    assert bc.auction is False


def test_bancor_rejects_impossible_trades():
    with pytest.raises(ValueError, match="amount"):
        bancor_sell(10, 100, 0.5, 11)
    with pytest.raises(ValueError, match="deposit"):
        bancor_buy(10, 100, 0.5, -1)


# --- pricing: auction --------------------------------------------------------------


def clear(kind, bids, budgets=None, slots=None, reserve=None):
    bids = np.atleast_2d(np.asarray(bids, float))
    n, P = bids.shape
    a = AuctionInput(
        bids=bids,
        budgets=np.full(n, 1e9) if budgets is None else np.asarray(budgets, float),
        slots=np.ones(P, int) if slots is None else np.asarray(slots),
        reserve=np.zeros(P) if reserve is None else np.asarray(reserve, float),
    )
    return make("pricing", "auction", kind=kind).clear(a)


def col(*xs):
    return np.array(xs, dtype=float)[:, None]


def test_second_price_one_slot():
    # bids [5, 8, 3, none], reserve 2: buyer 1 wins and pays max(5, 2) = 5
    out = clear("second_price", col(5, 8, 3, 0), reserve=[2.0])
    np.testing.assert_array_equal(out.won[:, 0], [False, True, False, False])
    np.testing.assert_array_equal(out.payments[:, 0], [0, 5, 0, 0])


def test_uniform_price_one_slot_is_first_price():
    # the lowest winning bid with one slot is the winner's own: 8
    out = clear("uniform_price", col(5, 8, 3, 0), reserve=[2.0])
    np.testing.assert_array_equal(out.payments[:, 0], [0, 8, 0, 0])


@pytest.mark.parametrize(("kind", "price"), [("second_price", 4), ("uniform_price", 5)])
def test_reserve_binds(kind, price):
    # bids [5, none, 1], reserve 4: only buyer 0 qualifies (1 < 4).
    # second_price: no qualifying losing bid -> the reserve 4; uniform_price: the
    # lowest winning bid, its own 5
    out = clear(kind, col(5, 0, 1), reserve=[4.0])
    np.testing.assert_array_equal(out.won[:, 0], [True, False, False])
    np.testing.assert_array_equal(out.payments[:, 0], [price, 0, 0])
    # nobody at or above the reserve: no sale; a bid exactly at the reserve wins, pays 4
    assert not clear(kind, col(3, 1), reserve=[4.0]).won.any()
    np.testing.assert_array_equal(clear(kind, col(4, 1), reserve=[4.0]).payments[:, 0], [4, 0])


def test_k_slots():
    # bids [9, 7, 6, 4, 2], 2 slots, reserve 1: winners 0 and 1
    #   second_price (k+1-th price): both pay 6; uniform_price (lowest winning): both pay 7
    bids = col(9, 7, 6, 4, 2)
    sp = clear("second_price", bids, slots=[2], reserve=[1.0])
    up = clear("uniform_price", bids, slots=[2], reserve=[1.0])
    np.testing.assert_array_equal(sp.won[:, 0], [True, True, False, False, False])
    np.testing.assert_array_equal(up.won, sp.won)
    np.testing.assert_array_equal(sp.payments[:, 0], [6, 6, 0, 0, 0])
    np.testing.assert_array_equal(up.payments[:, 0], [7, 7, 0, 0, 0])
    # 3 slots, reserve 5: only [9, 7, 6] qualify and all win; second_price has no losing
    # bid above the reserve -> 5; uniform_price -> the lowest winning bid 6
    sp = clear("second_price", bids, slots=[3], reserve=[5.0])
    up = clear("uniform_price", bids, slots=[3], reserve=[5.0])
    np.testing.assert_array_equal(sp.payments[:, 0], [5, 5, 5, 0, 0])
    np.testing.assert_array_equal(up.payments[:, 0], [6, 6, 6, 0, 0])
    # 0 slots: nobody
    assert not clear("second_price", bids, slots=[0]).won.any()


def test_ties_go_to_the_lower_buyer_index():
    out = clear("second_price", col(5, 5))
    np.testing.assert_array_equal(out.won[:, 0], [True, False])
    np.testing.assert_array_equal(out.payments[:, 0], [5, 0])


def test_feeds_clear_independently():
    # feed 0: bids [3, 1], 1 slot -> buyer 0 pays 1; feed 1: bids [2, 6], 2 slots,
    # reserve 1.5 -> both win and pay the reserve (no losing bid)
    out = clear("second_price", [[3, 2], [1, 6]], slots=[1, 2], reserve=[0.5, 1.5])
    np.testing.assert_array_equal(out.won, [[True, True], [False, True]])
    np.testing.assert_array_equal(out.payments, [[1, 1.5], [0, 1.5]])


def test_budgets_drop_bids_in_order_of_value():
    # buyer 0 bids [6, 5] on two feeds with budget 8: 6 is kept (2 left), 5 > 2 is dropped
    # buyer 1 bids [5.5, 4.9], budget large. Feed 0: 6 beats 5.5 -> buyer 0 pays 5.5.
    # Feed 1: only buyer 1 bids -> pays the reserve 1. Without the budget rule buyer 0
    # would have won both and owed 5.5 + 4.9 = 10.4 > 8.
    out = clear("second_price", [[6, 5], [5.5, 4.9]], budgets=[8, 100], reserve=[1, 1])
    np.testing.assert_array_equal(out.won, [[True, False], [False, True]])
    np.testing.assert_allclose(out.payments, [[5.5, 0], [0, 1]])
    # budget 8 over bids [6, 5, 2]: 6 kept (2 left), 5 dropped, 2 still fits -> kept
    out = clear("uniform_price", [[6, 5, 2]], budgets=[8], reserve=[1, 1, 1])
    np.testing.assert_array_equal(out.won, [[True, False, True]])
    np.testing.assert_array_equal(out.payments, [[6, 0, 2]])
    # a bid below the reserve does not use up budget: [3 (reserve 4), 2] with budget 2
    out = clear("second_price", [[3, 2]], budgets=[2], reserve=[4, 1])
    np.testing.assert_array_equal(out.won, [[False, True]])


def test_auction_prices_return_the_reserve():
    rule = make("pricing", "auction")
    assert rule.auction is True and make("pricing", "fixed").auction is False
    m = FeedMarket(arr(2, 5), arr(9, 9), np.array([3, 0]))
    np.testing.assert_array_equal(rule.prices(m), [2, 5])


# --- submission: commit-reveal -----------------------------------------------------


def test_commit_is_sha256_of_little_endian_float64_and_salt():
    # 1.0 as little-endian float64 is 00 00 00 00 00 00 f0 3f
    assert commit(arr(1.0), b"") == hashlib.sha256(bytes.fromhex("000000000000f03f")).hexdigest()
    assert (
        commit(arr(1.0), b"ab") == hashlib.sha256(bytes.fromhex("000000000000f03f6162")).hexdigest()
    )


def test_commit_reveal_round_trip_and_tampering():
    p = arr(0.1, -0.2, 0.3)
    c = commit(p, b"s3cret")
    assert verify_reveal(c, p.copy(), b"s3cret")
    tampered = p.copy()
    tampered[1] += 1e-12
    assert not verify_reveal(c, tampered, b"s3cret")
    assert not verify_reveal(c, p, b"s3cres")
    assert commit(p, b"other salt") != c


def test_commit_reveal_rule():
    rule = make("submission", "commit_reveal", miss_probability=0.2, forfeit=0.5, reveal_window=2)
    assert rule.visible_before_close() is False
    assert make("submission", "open").visible_before_close() is True
    # a reveal fails in each of the window's 2 rounds with chance 0.2, so it misses the
    # window with 0.2 ** 2 = 0.04: valid_i = u_i >= 0.04, n draws
    ok = rule.reveal_outcome(8, np.random.default_rng(5))
    np.testing.assert_array_equal(ok, np.random.default_rng(5).random(8) >= 0.04)
    big = rule.reveal_outcome(200_000, np.random.default_rng(1))
    assert big.mean() == pytest.approx(0.96, abs=0.003)
    one = make("submission", "commit_reveal", miss_probability=0.2, reveal_window=1)
    assert one.reveal_outcome(200_000, np.random.default_rng(1)).mean() == pytest.approx(
        0.8, abs=0.005
    )
    assert (
        make("submission", "commit_reveal", miss_probability=0.0)
        .reveal_outcome(50, np.random.default_rng(0))
        .all()
    )
    assert (
        not make("submission", "commit_reveal", miss_probability=1.0)
        .reveal_outcome(50, np.random.default_rng(0))
        .any()
    )
    assert make("submission", "open").reveal_outcome(4, np.random.default_rng(0)).all()


def test_commit_reveal_defaults_follow_ens():
    # ENS auction registrar: an unrevealed bid gets back 0.5 % of its deposit
    assert make("submission", "commit_reveal").params.forfeit == 0.995


# --- hosting -----------------------------------------------------------------------


def test_onchain_fee_per_byte():
    # 20,000 gas per 32-byte word = 625 gas/byte; x 20 gwei x 2,000 tokens/ETH = 0.025
    assert GAS_PER_BYTE == 625
    assert 625 * 20e-9 * 2000 == pytest.approx(make("hosting", "onchain").params.fee_per_byte)
    # sizes [32, 1000, 0] bytes at 0.025 -> [0.8, 25, 0]; always available, pinned or not
    rule = make("hosting", "onchain")
    h = HostingInput(sizes=arr(32, 1000, 0), pinned=np.array([False, True, False]))
    out = rule.host(h, np.random.default_rng(0))
    np.testing.assert_allclose(out.fees, [0.8, 25.0, 0.0], atol=1e-12)
    assert out.available.all()


def test_ipfs_pinning_fee_and_availability():
    # 0.30 per GB-month, 4 rounds a month: 2 GB -> 2 * 0.3 / 4 = 0.15; 0.5 GB -> 0.0375;
    # unpinned 1 GB -> no fee and unavailable
    rule = make("hosting", "ipfs", pin_cost_per_gb_month=0.30, rounds_per_month=4.0)
    h = HostingInput(sizes=arr(2e9, 5e8, 1e9), pinned=np.array([True, True, False]))
    out = rule.host(h, np.random.default_rng(0))
    np.testing.assert_allclose(out.fees, [0.15, 0.0375, 0.0], atol=1e-12)
    np.testing.assert_array_equal(out.available, [True, True, False])
    # a gateway that always fails: nothing reachable, pinning still paid
    down = make("hosting", "ipfs", rounds_per_month=4.0, gateway_failure=1.0)
    out = down.host(h, np.random.default_rng(0))
    assert not out.available.any()
    np.testing.assert_allclose(out.fees, [0.15, 0.0375, 0.0], atol=1e-12)


def test_ipfs_gateway_failure_rate():
    rule = make("hosting", "ipfs", gateway_failure=0.1)
    h = HostingInput(sizes=np.ones(100_000), pinned=np.ones(100_000, bool))
    assert rule.host(h, np.random.default_rng(2)).available.mean() == pytest.approx(0.9, abs=0.005)


def test_secure_nodes_fee_and_outages():
    # parties 3, 0.01 per GB-round per node, 0.5 per item: 1 GB -> 3 * 1 * 0.01 + 0.5 = 0.53;
    # 0 bytes -> 0.5
    rule = make(
        "hosting",
        "secure_nodes",
        parties=3,
        price_per_gb_round=0.01,
        fee_per_item=0.5,
        outage_probability=0.0,
    )
    h = HostingInput(sizes=arr(1e9, 0), pinned=np.array([False, False]))
    out = rule.host(h, np.random.default_rng(0))
    np.testing.assert_allclose(out.fees, [0.53, 0.5], atol=1e-12)
    assert out.available.all()
    # 2 parties each down with 0.1: available with (1 - 0.1)^2 = 0.81
    flaky = make("hosting", "secure_nodes", parties=2, outage_probability=0.1)
    big = HostingInput(sizes=np.ones(200_000), pinned=np.zeros(200_000, bool))
    assert flaky.host(big, np.random.default_rng(3)).available.mean() == pytest.approx(
        0.81, abs=0.005
    )


# --- bad parameters ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("family", "name", "params"),
    [
        ("slashing", "proportional", {"fraction": 1.5}),
        ("slashing", "proportional", {"threshold": -2.0}),
        ("slashing", "proportional", {"measure": "shapley"}),
        ("slashing", "full_on_negative", {"cascade_to_providers": -0.1}),
        ("slashing", "redistribute", {"cascade_to_providers": 1.01}),
        ("aggregation", "performance_weighted", {"power": -1.0}),
        ("aggregation", "performance_weighted", {"floor": 2.0}),
        ("aggregation", "inverse_variance", {"var_floor": 0.0}),
        ("pricing", "posted_adaptive", {"step": 1.0}),
        ("pricing", "posted_adaptive", {"floor": 0.0}),
        ("pricing", "posted_adaptive", {"cap": 0.5}),
        ("pricing", "bonding_curve", {"slope": 0.0}),
        ("pricing", "bonding_curve", {"exponent": 6.0}),
        ("pricing", "auction", {"kind": "first_price"}),
        ("submission", "commit_reveal", {"reveal_window": 0}),
        ("submission", "commit_reveal", {"reveal_window": 1.5}),
        ("submission", "commit_reveal", {"miss_probability": 1.2}),
        ("submission", "commit_reveal", {"forfeit": -0.5}),
        ("hosting", "onchain", {"fee_per_byte": -1.0}),
        ("hosting", "ipfs", {"rounds_per_month": 0.0}),
        ("hosting", "ipfs", {"gateway_failure": 2.0}),
        ("hosting", "secure_nodes", {"parties": 0}),
        ("hosting", "secure_nodes", {"outage_probability": "0.1"}),
    ],
)
def test_out_of_range_params_are_rejected(family, name, params):
    with pytest.raises(ValidationError, match=next(iter(params))):
        REGISTRIES[family].build(name, params)
