"""Unit tests of mechanisms.amm (Uniswap v2 math) and agents.exchange (pools on the ledger).

Oracles: the integer-free Uniswap v2 formula ``997*dx*y / (1000*x + 997*dx)``
(UniswapV2Library.getAmountOut), ``sqrt(x*y) - 1000`` and ``min(dx*T/x, dy*T/y)``
(UniswapV2Pair.mint), and the optimal arbitrage of Angeris et al. (2021), checked
against a brute-force grid.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from agents.exchange import Exchange, ExchangeError, Pool, SlippageError
from mechanisms import amm
from sim.ledger import InsufficientBalance, Ledger

# ---------------------------------------------------------------- swap formulas


def test_amount_out_hand_computed():
    # 997 * 100 * 1000 / (1000 * 1000 + 997 * 100) = 99_700_000 / 1_099_700
    assert amm.amount_out(100.0, 1000.0, 1000.0) == pytest.approx(90.66108938801491, rel=1e-15)
    assert amm.amount_out(100.0, 1000.0, 1000.0, fee=0.0) == pytest.approx(100_000 / 1100)
    # getAmountOut with the 997/1000 integers, for a few more points
    for dx, x, y in [(1.0, 5.0, 7.0), (2500.0, 1e6, 3e4), (1e-3, 2.0, 1e9)]:
        want = 997 * dx * y / (1000 * x + 997 * dx)
        assert amm.amount_out(dx, x, y) == pytest.approx(want, rel=1e-14)


def test_amount_out_is_vectorized_over_pools():
    dx = np.array([100.0, 0.0, 50.0])
    x = np.array([1000.0, 10.0, 200.0])
    y = np.array([1000.0, 20.0, 400.0])
    got = amm.amount_out(dx, x, y)
    assert isinstance(got, np.ndarray) and got.shape == (3,)
    want = 997 * dx * y / (1000 * x + 997 * dx)
    np.testing.assert_allclose(got, want, rtol=1e-14)
    assert isinstance(amm.amount_out(1.0, 2.0, 3.0), float)


def test_amount_in_inverts_amount_out():
    out = amm.amount_out(100.0, 1000.0, 1000.0)
    assert amm.amount_in(out, 1000.0, 1000.0) == pytest.approx(100.0, rel=1e-13)
    # hand-computed: 1000 * 50 / (0.997 * 950)
    assert amm.amount_in(50.0, 1000.0, 1000.0) == pytest.approx(50_000 / (0.997 * 950))
    with pytest.raises(ValueError, match="below reserve_out"):
        amm.amount_in(1000.0, 1000.0, 1000.0)


def test_invalid_inputs_raise():
    with pytest.raises(ValueError, match="fee"):
        amm.amount_out(1.0, 1.0, 1.0, fee=1.0)
    with pytest.raises(ValueError, match="reserve_in"):
        amm.amount_out(1.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="amount_in"):
        amm.amount_out(-1.0, 1.0, 1.0)


def test_spot_price_and_marginal_rate():
    assert amm.spot_price(1000.0, 100_000.0) == 100.0
    # the marginal rate at dx = 0 is the spot price net of fee
    assert amm.marginal_rate(0.0, 1000.0, 100_000.0) == pytest.approx(0.997 * 100.0)
    # and it is the derivative of amount_out
    h = 1e-4
    num = (amm.amount_out(10 + h, 1000.0, 5000.0) - amm.amount_out(10 - h, 1000.0, 5000.0)) / (
        2 * h
    )
    assert amm.marginal_rate(10.0, 1000.0, 5000.0) == pytest.approx(num, rel=1e-8)


# ---------------------------------------------------------------- liquidity shares


def test_initial_shares_hand_computed():
    # sqrt(4e6 * 9e6) - 1000 = 6e6 - 1000
    assert amm.initial_shares(4e6, 9e6) == 5_999_000.0
    assert amm.initial_shares(4e6, 9e6, minimum_liquidity=0.0) == 6e6
    with pytest.raises(ValueError, match="INSUFFICIENT_LIQUIDITY_MINTED"):
        amm.initial_shares(1000.0, 1000.0)


def test_deposit_shares_hand_computed():
    # balanced: 10% of each side -> 10% of T
    assert amm.deposit_shares(100.0, 200.0, 1000.0, 2000.0, 500.0) == pytest.approx(50.0)
    # unbalanced: credited for the smaller side (dy: 100 * 500 / 2000 = 25)
    assert amm.deposit_shares(100.0, 100.0, 1000.0, 2000.0, 500.0) == pytest.approx(25.0)
    np.testing.assert_allclose(
        amm.deposit_shares(np.array([1.0, 4.0]), np.array([9.0, 2.0]), 10.0, 10.0, 100.0),
        [10.0, 20.0],
    )


# ---------------------------------------------------------------- arbitrage


def buy_profit(dq, x, y, p, fee):
    """Profit at fair price p of paying dq quote for base."""
    return p * amm.amount_out(dq, y, x, fee) - dq


def sell_profit(db, x, y, p, fee):
    """Profit at fair price p of paying db base for quote."""
    return amm.amount_out(db, x, y, fee) - p * db


def test_arbitrage_without_fee_moves_the_pool_to_the_fair_price():
    # x = 1000 base, y = 100_000 quote (price 100), fair 121: sqrt(121 * 1e8) - 1e5
    base_in, quote_in = amm.arbitrage_trade(1000.0, 100_000.0, 121.0, fee=0.0)
    assert base_in == 0.0
    assert quote_in == pytest.approx(10_000.0, rel=1e-12)
    out = amm.amount_out(quote_in, 100_000.0, 1000.0, fee=0.0)
    assert amm.spot_price(1000.0 - out, 100_000.0 + quote_in) == pytest.approx(121.0)
    # fair 25: sell base, sqrt(1e8 / 25) - 1000 = 1000
    base_in, quote_in = amm.arbitrage_trade(1000.0, 100_000.0, 25.0, fee=0.0)
    assert (base_in, quote_in) == (pytest.approx(1000.0), 0.0)


@pytest.mark.parametrize(
    ("x", "y", "p", "fee"),
    [
        (1000.0, 100_000.0, 121.0, 0.003),  # pool cheap: buy base
        (1000.0, 100_000.0, 80.0, 0.003),  # pool dear: sell base
        (5e4, 5e4, 1.5, 0.01),
        (3.0, 900.0, 250.0, 0.05),
        (2e6, 1e3, 4e-4, 0.003),
    ],
)
def test_arbitrage_is_the_grid_optimum_and_prices_the_last_unit_at_fair(x, y, p, fee):
    base_in, quote_in = amm.arbitrage_trade(x, y, p, fee)
    assert (base_in > 0) != (quote_in > 0)  # exactly one side trades
    if quote_in > 0:
        # marginal price of base including the fee equals the fair price
        assert p * amm.marginal_rate(quote_in, y, x, fee) == pytest.approx(1.0, rel=1e-9)
        best = buy_profit(quote_in, x, y, p, fee)
        grid = np.linspace(0.0, 3.0 * quote_in, 30_001)
        grid_profit = buy_profit(grid, x, y, p, fee)
        step = grid[1]
        assert abs(grid[np.argmax(grid_profit)] - quote_in) <= step
    else:
        assert amm.marginal_rate(base_in, x, y, fee) == pytest.approx(p, rel=1e-9)
        best = sell_profit(base_in, x, y, p, fee)
        grid = np.linspace(0.0, 3.0 * base_in, 30_001)
        grid_profit = sell_profit(grid, x, y, p, fee)
        step = grid[1]
        assert abs(grid[np.argmax(grid_profit)] - base_in) <= step
    assert best > 0
    assert best >= grid_profit.max() - 1e-9 * max(1.0, abs(best))


def test_no_trade_inside_the_no_arbitrage_band():
    # spot 100, fee 1%: band is 100 * 0.99 <= ... no trade for fair in [99, 101.0101]
    for p in (99.5, 100.0, 101.0):
        assert amm.arbitrage_trade(1000.0, 100_000.0, p, fee=0.01) == (0.0, 0.0)
    assert amm.arbitrage_trade(1000.0, 100_000.0, 101.5, fee=0.01)[1] > 0
    assert amm.arbitrage_trade(1000.0, 100_000.0, 98.5, fee=0.01)[0] > 0


def test_arbitrage_leaves_the_pool_inside_the_band_and_is_vectorized():
    x = np.array([1000.0, 1000.0, 50.0, 7.0])
    y = np.array([100_000.0, 100_000.0, 50.0, 7e3])
    p = np.array([130.0, 70.0, 1.0, 1e3])
    fee = 0.003
    base_in, quote_in = amm.arbitrage_trade(x, y, p, fee)
    assert base_in.shape == quote_in.shape == (4,)
    np.testing.assert_array_equal(base_in > 0, [False, True, False, False])
    np.testing.assert_array_equal(quote_in > 0, [True, False, False, False])
    sold = amm.amount_out(base_in, x, y, fee)  # quote out for base in
    bought = amm.amount_out(quote_in, y, x, fee)  # base out for quote in
    x2 = x + base_in - bought
    y2 = y + quote_in - sold
    again = amm.arbitrage_trade(x2, y2, p, fee)
    np.testing.assert_array_equal(again[0], 0.0)
    np.testing.assert_array_equal(again[1], 0.0)


# ---------------------------------------------------------------- the exchange on a ledger


@pytest.fixture
def market():
    L = Ledger(["token", "usd", "asset_0", "asset_1"])
    ex = Exchange(L, fee=0.003)
    trader = L.open_account("trader")
    L.transfer(
        L.MINT,
        trader,
        np.array([1, 2, 3]),
        np.array([1e6, 100.0, 100.0]),
        phase="genesis",
        reason="genesis",
    )
    return L, ex, trader


def test_create_pool_mints_reserves_into_the_pool_account(market):
    L, ex, _ = market
    pool = ex.create_pool("asset_0", "usd", 1000.0, 100_000.0)
    assert pool == Pool("pool:asset_0/usd", "asset_0", "usd", L.account_id("pool:asset_0/usd"))
    assert ex.pool("asset_0") is pool
    assert ex.reserves(pool) == (1000.0, 100_000.0)
    assert ex.price(pool) == 100.0
    assert ex.invariant(pool) == 1e8
    assert L.minted("usd") == 1e6 + 100_000.0
    with pytest.raises(ExchangeError, match="already exists"):
        ex.create_pool("asset_0", "usd", 1.0, 1.0)
    with pytest.raises(ExchangeError, match="no pool for asset_1/usd"):
        ex.pool("asset_1")


def test_swap_moves_both_legs_through_the_ledger(market):
    L, ex, trader = market
    pool = ex.create_pool("asset_0", "usd", 1000.0, 1000.0)
    out = ex.swap(trader, pool, "asset_0", 100.0, phase="trade", reason="t")
    assert out == pytest.approx(99_700_000 / 1_099_700, rel=1e-15)
    assert ex.reserves(pool) == (1100.0, pytest.approx(1000.0 - out))
    assert L.balance(trader, "asset_0") == 0.0
    assert L.balance(trader, "usd") == pytest.approx(1e6 + out)
    assert ex.invariant(pool) > 1e6
    df = L.to_frame().tail(2)
    assert df["src"].tolist() == ["trader", "pool:asset_0/usd"]
    assert df["reason"].tolist() == ["t", "t"]
    L.check_invariants(full=True)


def test_swap_min_out_and_insufficient_balance_move_nothing(market):
    L, ex, trader = market
    pool = ex.create_pool("asset_0", "usd", 1000.0, 1000.0)
    n = len(L)
    with pytest.raises(SlippageError, match="below min_out"):
        ex.swap(trader, pool, "asset_0", 100.0, phase="trade", reason="t", min_out=91.0)
    with pytest.raises(InsufficientBalance, match="'trader'"):
        ex.swap(trader, pool, "asset_0", 101.0, phase="trade", reason="t")
    with pytest.raises(ExchangeError, match="not 'token'"):
        ex.swap(trader, pool, "token", 1.0, phase="trade", reason="t")
    assert len(L) == n and ex.reserves(pool) == (1000.0, 1000.0)


def test_swap_many_equals_one_swap_per_pool(market):
    L, ex, trader = market
    p0 = ex.create_pool("asset_0", "usd", 1000.0, 50_000.0)
    p1 = ex.create_pool("asset_1", "usd", 2000.0, 80_000.0)
    out = ex.swap_many(
        np.array([trader, trader]),
        [p0, p1],
        np.array([True, False]),
        np.array([10.0, 4000.0]),
        phase="trade",
        reason="t",
    )
    want0 = amm.amount_out(10.0, 1000.0, 50_000.0)
    want1 = amm.amount_out(4000.0, 80_000.0, 2000.0)
    np.testing.assert_allclose(out, [want0, want1], rtol=1e-15)
    assert ex.reserves(p0) == (1010.0, pytest.approx(50_000.0 - want0))
    assert ex.reserves(p1) == (pytest.approx(2000.0 - want1), 84_000.0)
    assert L.balance(trader, "usd") == pytest.approx(1e6 - 4000.0 + want0)
    with pytest.raises(ExchangeError, match="distinct"):
        ex.swap_many(
            np.array([trader, trader]),
            [p0, p0],
            np.array([True, True]),
            np.array([1.0, 1.0]),
            phase="trade",
            reason="t",
        )
    L.check_invariants(full=True)


def test_arbitrage_profit_matches_the_ledger_at_fair_prices(market):
    L, ex, trader = market
    p0 = ex.create_pool("asset_0", "usd", 1000.0, 100_000.0)  # price 100
    p1 = ex.create_pool("asset_1", "usd", 1000.0, 100_000.0)
    fair = np.array([110.0, 95.0])
    held = L.balances(np.full(3, trader), np.array([1, 2, 3]))
    profit = ex.arbitrage(trader, [p0, p1], fair, phase="trade")
    now = L.balances(np.full(3, trader), np.array([1, 2, 3]))
    d = now - held
    # per pool, from the pool's side: pool 0 sold base for quote, pool 1 bought base
    (b0, q0), (b1, q1) = ex.reserves(p0), ex.reserves(p1)
    assert profit[0] == pytest.approx(110.0 * (1000.0 - b0) - (q0 - 1e5), rel=1e-12)
    assert profit[1] == pytest.approx((1e5 - q1) - 95.0 * (b1 - 1000.0), rel=1e-12)
    assert profit.sum() == pytest.approx(d[0] + d[1] * 110.0 + d[2] * 95.0, rel=1e-12)
    assert (profit > 0).all()
    # each pool now sits inside its no-arbitrage band
    for pool, p in zip([p0, p1], fair, strict=True):
        price = ex.price(pool)
        assert 0.997 * p <= price <= p / 0.997
    # the uncapped trades are exactly the closed form
    want = amm.arbitrage_trade(np.array([1000.0, 1000.0]), np.array([1e5, 1e5]), fair)
    assert -d[2] == pytest.approx(want[0][1])  # asset_1 sold
    L.check_invariants(full=True)


def test_arbitrage_is_capped_by_holdings_and_max_quote(market):
    L, ex, trader = market
    p0 = ex.create_pool("asset_0", "usd", 1000.0, 100_000.0)
    p1 = ex.create_pool("asset_1", "usd", 1000.0, 100_000.0)
    # fair 50 asks to sell ~410 units of asset_1 but the trader holds 100
    prof = ex.arbitrage(
        trader, [p0, p1], np.array([200.0, 50.0]), phase="trade", max_quote=np.array([1000.0, 1e9])
    )
    assert L.balance(trader, "asset_1") == 0.0
    assert L.balance(trader, "usd") == pytest.approx(
        1e6 - 1000.0 + amm.amount_out(100.0, 1000.0, 1e5), rel=1e-12
    )
    assert ex.reserves(p0)[1] == 101_000.0  # exactly max_quote went in
    assert (prof > 0).all()


def test_arbitrage_scales_buys_to_the_quote_balance():
    L = Ledger(["usd", "a", "b"])
    ex = Exchange(L)
    trader = L.open_account("arb")
    L.transfer(L.MINT, trader, "usd", 300.0, phase="genesis", reason="genesis")
    pools = [ex.create_pool(n, "usd", 1000.0, 100_000.0) for n in ("a", "b")]
    prof = ex.arbitrage(trader, pools, np.array([150.0, 120.0]), phase="trade")
    assert L.balance(trader, "usd") == pytest.approx(0.0, abs=1e-9)
    assert (prof > 0).all()
    q_a, q_b = ex.reserves(pools[0])[1] - 1e5, ex.reserves(pools[1])[1] - 1e5
    want = np.array([amm.arbitrage_trade(1000.0, 1e5, p)[1] for p in (150.0, 120.0)])
    assert q_a / q_b == pytest.approx(want[0] / want[1], rel=1e-9)  # scaled together
    assert math.isclose(q_a + q_b, 300.0, rel_tol=1e-12)
