"""Property tests of the constant-product pool: x*y never falls; the ledger stays whole."""

from __future__ import annotations

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from agents.exchange import Exchange
from mechanisms import amm
from sim.ledger import Ledger

reserve = st.floats(min_value=1e-3, max_value=1e9)
trade = st.floats(min_value=0.0, max_value=1e9)
fee = st.sampled_from([0.0, 1e-4, 0.003, 0.01, 0.3])
EPS = np.finfo(float).eps


def product_held(x, y, x2, y2):
    """x2*y2 >= x*y, up to the rounding of float reserves.

    A reserve stored as a float is known to half an ulp of its size, so after a swap
    that grows x to x2 the product is known to about eps * x2 * y (and symmetrically).
    Uniswap floors the output in integers; in floats this is the honest bound.
    """
    return x2 * y2 >= x * y - 8 * EPS * max(x2 * y, x * y2, x * y)


@settings(max_examples=500, deadline=None)
@given(reserve, reserve, trade, fee)
def test_product_never_falls_after_a_swap(x, y, dx, f):
    dy = amm.amount_out(dx, x, y, f)
    assert 0.0 <= dy < y or (dy == y and dx > 0)  # cannot empty the pool (up to rounding)
    # the fee stays in the pool; without a fee only rounding can lower the product
    assert product_held(x, y, x + dx, y - dy)


@settings(max_examples=300, deadline=None)
@given(reserve, reserve, st.floats(min_value=1e-6, max_value=1e6), fee)
def test_amount_in_inverts_amount_out(x, y, dx, f):
    dy = amm.amount_out(dx, x, y, f)
    assume(dy < y * (1 - 1e-6) and dy > 0)
    assert np.isclose(amm.amount_in(dy, x, y, f), dx, rtol=1e-6)


@settings(max_examples=300, deadline=None)
@given(reserve, reserve, st.floats(min_value=1e-3, max_value=1e3), fee)
def test_arbitrage_trade_is_one_sided_profitable_and_settles_the_pool(x, y, p, f):
    base_in, quote_in = amm.arbitrage_trade(x, y, p, f)
    assert base_in >= 0 and quote_in >= 0 and base_in * quote_in == 0
    if quote_in > 0:
        assert p * amm.amount_out(quote_in, y, x, f) - quote_in >= -1e-9 * quote_in
        # a 1% smaller or larger trade is not better
        for q in (0.99 * quote_in, 1.01 * quote_in):
            assert p * amm.amount_out(q, y, x, f) - q <= (
                p * amm.amount_out(quote_in, y, x, f) - quote_in + 1e-9 * quote_in
            )
    if base_in > 0:
        assert amm.amount_out(base_in, x, y, f) - p * base_in >= -1e-9 * p * base_in


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 2),  # trader
            st.integers(0, 2),  # pool
            st.booleans(),  # sell base?
            st.floats(min_value=0.0, max_value=1.0),  # share of what the trader holds
        ),
        max_size=25,
    ),
    st.lists(st.floats(min_value=1.0, max_value=1e6), min_size=3, max_size=3),
    st.sampled_from([0.0, 0.003, 0.05]),
    st.lists(st.floats(min_value=0.5, max_value=2.0), min_size=3, max_size=3),
)
def test_exchange_swaps_keep_the_ledger_whole_and_products_rising(trades, reserves, f, moves):
    L = Ledger(["usd", "a0", "a1", "a2"])
    ex = Exchange(L, fee=f)
    pools = [ex.create_pool(f"a{i}", "usd", r, r * (i + 1)) for i, r in enumerate(reserves)]
    traders = L.open_accounts(["t0", "t1", "t2"])
    L.transfer(L.MINT, traders, "usd", 1e6, phase="genesis", reason="genesis")
    for i in range(3):
        L.transfer(L.MINT, traders, f"a{i}", 1e4, phase="genesis", reason="genesis")
    arb = L.open_account("arb")
    L.transfer(L.MINT, arb, np.arange(4), 1e6, phase="genesis", reason="genesis")
    for rnd, (t, k, sell, share) in enumerate(trades, start=1):
        L.begin_round(rnd)
        pool = pools[k]
        before = ex.reserves(pool)
        asset_in = pool.base if sell else pool.quote
        amount = share * L.balance(int(traders[t]), asset_in)
        out = ex.swap(int(traders[t]), pool, asset_in, amount, phase="trade", reason="t")
        assert out >= 0
        assert product_held(*before, *ex.reserves(pool))
        L.check_invariants()
    # vectorized paths: one swap per pool, then arbitrage to moved fair prices
    before = [ex.reserves(p) for p in pools]
    ex.swap_many(
        np.full(3, arb),
        pools,
        np.array([True, False, True]),
        np.array([10.0, 100.0, 1.0]),
        phase="trade",
        reason="many",
    )
    prices = np.array([ex.price(p) for p in pools]) * np.asarray(moves)
    profit = ex.arbitrage(int(arb), pools, prices, phase="trade")
    assert (profit >= -1e-9 * np.maximum(1.0, np.abs(prices))).all()
    for p, (x, y) in zip(pools, before, strict=True):
        x2, y2 = ex.reserves(p)
        # two swaps (swap_many, arbitrage): allow the rounding of both
        assert x2 * y2 >= x * y - 16 * EPS * max(x2 * y, x * y2, x * y, x2 * y2)
    L.check_invariants(full=True)
    supply_usd = L.supply("usd")
    assert np.isclose(supply_usd, L.minted("usd") - L.burned("usd"), rtol=1e-12)
