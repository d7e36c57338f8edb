"""Constant-product market maker (Uniswap v2) mathematics, pure and vectorized.

Every function takes floats or numpy arrays (one entry per pool, broadcast together)
and returns a float for scalar inputs and an array otherwise. Notation: a pool holds
``x`` of the asset paid in (or of the base) and ``y`` of the asset paid out (or of the
quote); ``gamma = 1 - fee`` is the share of the input that counts for the price.

Sources:

* H. Adams, N. Zinsmeister, D. Robinson, "Uniswap v2 Core" (whitepaper, 2020), sections
  2.1-3.4: the invariant ``x * y = k`` checked on fee-adjusted balances, the 0.3 % fee
  kept by the pool, ``sqrt(x * y) - 1000`` initial liquidity with ``MINIMUM_LIQUIDITY``
  locked.
* ``UniswapV2Library.getAmountOut`` / ``getAmountIn`` (v2-periphery): the 997/1000 form
  is ``fee = 0.003``. ``UniswapV2Pair.mint`` for the liquidity shares.
* G. Angeris, H.-T. Kao, R. Chiang, C. Noyes, T. Chitra, "An analysis of Uniswap
  markets" (Cryptoeconomic Systems, 2021), section 3: the arbitrageur's optimal trade
  against an external reference price, and the no-arbitrage band
  ``gamma * p <= y / x <= p / gamma``.

Deliberate differences from the contracts: everything is real-valued (no integer
rounding, so ``amount_in`` is the exact inverse instead of rounding up by one wei).
"""

from __future__ import annotations

from typing import Any

import numpy as np

ArrayLike = Any  # float or numpy array

#: Uniswap v2 locks this many shares of the first deposit (``MINIMUM_LIQUIDITY``).
MINIMUM_LIQUIDITY = 1000.0


def _out(v: np.ndarray) -> float | np.ndarray:
    return float(v) if np.ndim(v) == 0 else v


# The checks below take the minimum and the maximum (NaN fails every comparison): two
# reductions instead of a handful of array operations, as the exchange calls them for
# every swap.


def _gamma(fee: ArrayLike) -> np.ndarray:
    f = np.asarray(fee, dtype=float)
    if f.size and not (f.min() >= 0.0 and f.max() < 1.0):
        raise ValueError(f"fee must be in [0, 1), got {fee!r}")
    return 1.0 - f


def _positive(name: str, v: ArrayLike) -> np.ndarray:
    a = np.asarray(v, dtype=float)
    if a.size and not (a.min() > 0.0 and a.max() < np.inf):
        raise ValueError(f"{name} must be finite and > 0, got {v!r}")
    return a


def _non_negative(name: str, v: ArrayLike) -> np.ndarray:
    a = np.asarray(v, dtype=float)
    if a.size and not (a.min() >= 0.0 and a.max() < np.inf):
        raise ValueError(f"{name} must be finite and >= 0, got {v!r}")
    return a


def amount_out(
    amount_in: ArrayLike, reserve_in: ArrayLike, reserve_out: ArrayLike, fee: ArrayLike = 0.003
) -> float | np.ndarray:
    """Output of a swap: ``dy = (1 - fee) * dx * y / (x + (1 - fee) * dx)``.

    ``dx`` is paid into the reserve ``x``, ``dy`` leaves the reserve ``y``. With
    ``fee = 0.003`` this is ``UniswapV2Library.getAmountOut``,
    ``997 * dx * y / (1000 * x + 997 * dx)``, without the integer floor. The fee stays
    in the pool, so ``(x + dx) * (y - dy) >= x * y``.
    """
    g = _gamma(fee)
    dx = _non_negative("amount_in", amount_in)
    x, y = _positive("reserve_in", reserve_in), _positive("reserve_out", reserve_out)
    gdx = g * dx
    return _out(gdx * y / (x + gdx))


def amount_in(
    amount_out: ArrayLike, reserve_in: ArrayLike, reserve_out: ArrayLike, fee: ArrayLike = 0.003
) -> float | np.ndarray:
    """Input needed for a given output: ``dx = x * dy / ((1 - fee) * (y - dy))``.

    The exact inverse of :func:`amount_out` (requires ``0 <= dy < y``). The contract's
    ``UniswapV2Library.getAmountIn`` computes ``1000 * x * dy / (997 * (y - dy)) + 1``
    in integers (rounding up); here there is no rounding.
    """
    g = _gamma(fee)
    dy = _non_negative("amount_out", amount_out)
    x, y = _positive("reserve_in", reserve_in), _positive("reserve_out", reserve_out)
    if np.any(dy >= y):
        raise ValueError("amount_out must be below reserve_out (a pool cannot be emptied)")
    return _out(x * dy / (g * (y - dy)))


def marginal_rate(
    amount_in: ArrayLike, reserve_in: ArrayLike, reserve_out: ArrayLike, fee: ArrayLike = 0.003
) -> float | np.ndarray:
    """Derivative of :func:`amount_out` in ``dx``: ``(1 - fee) * x * y / (x + (1 - fee) * dx)**2``.

    The output per unit of the *last* unit paid in by a single swap of ``dx``. At
    ``dx = 0`` it is the pool's price net of fee, ``(1 - fee) * y / x``.
    """
    g = _gamma(fee)
    dx = _non_negative("amount_in", amount_in)
    x, y = _positive("reserve_in", reserve_in), _positive("reserve_out", reserve_out)
    return _out(g * x * y / (x + g * dx) ** 2)


def spot_price(reserve_base: ArrayLike, reserve_quote: ArrayLike) -> float | np.ndarray:
    """Quote per base at the margin, fee excluded: ``p = y / x`` (whitepaper section 2.2)."""
    x, y = _positive("reserve_base", reserve_base), _positive("reserve_quote", reserve_quote)
    return _out(y / x)


def arbitrage_trade(
    reserve_base: ArrayLike, reserve_quote: ArrayLike, fair_price: ArrayLike, fee: ArrayLike = 0.003
) -> tuple[float | np.ndarray, float | np.ndarray]:
    """The profit-maximizing single swap against an external fair price ``p`` (quote/base).

    Returns ``(base_in, quote_in)``: at most one is positive.

    * Pool too cheap, ``y / x < gamma * p``: pay ``quote_in`` of quote for base. The
      profit ``p * amount_out(dq, y, x) - dq`` is concave in ``dq``; its first-order
      condition ``p * gamma * x * y / (y + gamma * dq)**2 = 1`` gives
      ``quote_in = (sqrt(gamma * p * x * y) - y) / gamma``.
    * Pool too dear, ``y / x > p / gamma``: pay ``base_in`` of base for quote. The
      profit ``amount_out(db, x, y) - p * db`` gives
      ``base_in = (sqrt(gamma * x * y / p) - x) / gamma``.
    * Inside the no-arbitrage band ``gamma * p <= y / x <= p / gamma``: ``(0, 0)``.

    At the optimum the marginal rate of the executed swap, net of fee, equals the fair
    price (:func:`marginal_rate`), so the last unit traded breaks even. Source: Angeris
    et al. (2021), section 3. Because the fee stays in the pool, the pool's spot price
    after the trade is not exactly ``p`` (with ``fee = 0`` it is); it lands inside the
    no-arbitrage band, so repeating the trade gives ``(0, 0)``.
    """
    g = _gamma(fee)
    x, y = _positive("reserve_base", reserve_base), _positive("reserve_quote", reserve_quote)
    p = _positive("fair_price", fair_price)
    k = x * y
    cheap = g * p * x > y
    dear = g * y > p * x
    quote_in = np.where(cheap, (np.sqrt(g * p * k) - y) / g, 0.0)
    base_in = np.where(dear, (np.sqrt(g * k / p) - x) / g, 0.0)
    return _out(np.maximum(base_in, 0.0)), _out(np.maximum(quote_in, 0.0))


def initial_shares(
    x: ArrayLike, y: ArrayLike, minimum_liquidity: float = MINIMUM_LIQUIDITY
) -> float | np.ndarray:
    """Shares of the first deposit: ``sqrt(x * y) - minimum_liquidity`` (``UniswapV2Pair.mint``).

    ``minimum_liquidity`` shares are locked forever (sent to the zero address). A
    deposit with ``sqrt(x * y) <= minimum_liquidity`` is refused, as the contract
    reverts with ``INSUFFICIENT_LIQUIDITY_MINTED``.
    """
    s = np.sqrt(_positive("x", x) * _positive("y", y)) - minimum_liquidity
    if np.any(s <= 0):
        raise ValueError(
            f"sqrt(x * y) must exceed minimum_liquidity={minimum_liquidity} "
            "(INSUFFICIENT_LIQUIDITY_MINTED)"
        )
    return _out(s)


def deposit_shares(
    dx: ArrayLike, dy: ArrayLike, x: ArrayLike, y: ArrayLike, total_shares: ArrayLike
) -> float | np.ndarray:
    """Shares of a later deposit: ``min(dx * T / x, dy * T / y)`` (``UniswapV2Pair.mint``).

    ``T`` is the total supply of shares before the deposit; an unbalanced deposit is
    credited for its smaller side (the surplus is donated to the pool).
    """
    T = _positive("total_shares", total_shares)
    a, b = _non_negative("dx", dx), _non_negative("dy", dy)
    return _out(np.minimum(a * T / _positive("x", x), b * T / _positive("y", y)))
