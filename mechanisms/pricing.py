"""Pricing rules: how data feeds (and listed models) are priced (registry ``PRICING``).

Contract: ``prices(m: FeedMarket) -> np.ndarray``, the price of each feed this round
(> 0). Every rule declares the class attribute ``auction``:

- ``auction = False`` (posted price): buyers pay ``prices(m)`` for each feed they take.
- ``auction = True``: access is sold by sealed bids; the rule also has
  ``clear(a: AuctionInput) -> AuctionOutcome`` (winners and payments per feed), which
  the engine calls in the buy phase. Its ``prices(m)`` returns the reserve (the list
  price) for the engine's bookkeeping.

The Bancor functions of curation markets live here as pure functions
(:func:`bancor_buy`, :func:`bancor_sell`, :func:`curve_reserve`, :func:`curve_supply`).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import numpy as np
import pydantic
from pydantic.dataclasses import dataclass

from mechanisms.base import AuctionInput, AuctionOutcome, FeedMarket
from mechanisms.registry import PARAMS_CONFIG, PRICING

__all__ = [
    "Auction",
    "BondingCurve",
    "Fixed",
    "PostedAdaptive",
    "bancor_buy",
    "bancor_sell",
    "curve_reserve",
    "curve_supply",
]


# --- Bancor formulas (curation markets) ------------------------------------------------


def bancor_buy(supply, reserve, cw, deposit):
    """Tokens minted for ``deposit`` of reserve currency: ``S * ((1 + dR / R) ** CW - 1)``.

    ``supply`` S > 0 and ``reserve`` R > 0 are the curve's state before the purchase,
    ``cw`` in (0, 1] its connector weight, ``deposit`` dR >= 0. Works elementwise on
    arrays. Source: Hertzog, Benartzi & Benartzi (2017), "Bancor Protocol" white paper,
    ``calculatePurchaseReturn``; MECHANISMS.md, "Curation markets and bonding curves".
    At S = 0 the formula is undefined; start a power curve with :func:`curve_supply`.
    """
    supply, reserve, cw, deposit = (
        np.asarray(x, dtype=float) for x in (supply, reserve, cw, deposit)
    )
    if np.any(deposit < 0) or np.any(reserve <= 0) or np.any(supply <= 0):
        raise ValueError("bancor_buy needs supply > 0, reserve > 0 and deposit >= 0")
    return supply * ((1.0 + deposit / reserve) ** cw - 1.0)


def bancor_sell(supply, reserve, cw, amount):
    """Reserve returned for burning ``amount`` tokens: ``R * (1 - (1 - dS / S) ** (1 / CW))``.

    ``0 <= amount <= supply``; ``cw`` in (0, 1]. Works elementwise on arrays. Source:
    Bancor white paper (2017), ``calculateSaleReturn``; MECHANISMS.md, "Curation
    markets and bonding curves".
    """
    supply, reserve, cw, amount = (
        np.asarray(x, dtype=float) for x in (supply, reserve, cw, amount)
    )
    if np.any(amount < 0) or np.any(amount > supply) or np.any(supply <= 0):
        raise ValueError("bancor_sell needs supply > 0 and 0 <= amount <= supply")
    return reserve * (1.0 - (1.0 - amount / supply) ** (1.0 / cw))


def curve_reserve(m, n, supply):
    """Reserve held by the power curve ``price = m * s ** n`` at ``supply``.

    Formula: ``R = m * S ** (n + 1) / (n + 1)`` (the integral of the price from 0 to S);
    its connector weight is ``CW = 1 / (n + 1)``, so that the Bancor price ``R / (S *
    CW)`` equals ``m * S ** n``. Source: MECHANISMS.md, "Curation markets and bonding
    curves" (Bancor white paper; de la Rouviere, "Tokens 2.0: curation markets", 2017).
    """
    supply = np.asarray(supply, dtype=float)
    return m * supply ** (n + 1.0) / (n + 1.0)


def curve_supply(m, n, reserve):
    """Supply at which the power curve ``price = m * s ** n`` holds ``reserve``.

    Formula: ``S = ((n + 1) * R / m) ** (1 / (n + 1))``, the inverse of
    :func:`curve_reserve`; defined at R = 0 (S = 0), where :func:`bancor_buy` is not.
    """
    reserve = np.asarray(reserve, dtype=float)
    return ((n + 1.0) * reserve / m) ** (1.0 / (n + 1.0))


# --- posted-price rules ----------------------------------------------------------------


@PRICING.register("fixed")
class Fixed:
    """Each provider charges its own list price, unchanged from round to round.

    Formula: ``price_p = list_price_p``.

    Source: Ocean Protocol's fixed-rate exchange, where the publisher sets the price
    of a datatoken (Ocean Protocol documentation, "Fixed pricing"); MECHANISMS.md,
    "Ocean Protocol".
    """

    auction: ClassVar[bool] = False

    @dataclass(frozen=True, config=PARAMS_CONFIG)
    class Params:
        """``fixed`` has no parameters."""

    def __init__(self, params: Params):
        self.params = params

    def prices(self, m: FeedMarket) -> np.ndarray:
        return np.array(m.list_prices, dtype=float)


@PRICING.register("posted_adaptive")
class PostedAdaptive:
    """A provider raises its price under excess demand and lowers it when nobody buys.

    Formula, per feed p, from last round's price ``q_p = m.current_p`` (the list price
    when that is not a positive number) and buyers ``d_p = m.demand_p``::

        q'_p = q_p * (1 + step)   if d_p > target_p
        q'_p = q_p * (1 - step)   if d_p == 0
        q'_p = q_p                otherwise
        price_p = clip(q'_p, floor * list_p, cap * list_p)

    with ``target_p = m.capacity_p`` (buyers the feed can serve) when the market states
    capacities, else the parameter ``target_demand``.

    Source: Walrasian tatonnement, the price moving in the direction of excess demand
    (Walras 1874; Samuelson 1941, "The stability of equilibrium", Econometrica 9), in
    the multiplicative form of posted-price learning (Kleinberg & Leighton 2003, "The
    value of knowing a demand curve", FOCS). Deliberate difference: a fixed step on
    the sign of excess demand instead of a step proportional to its size, and bounds
    tied to the provider's list price so a price can neither vanish nor explode.
    """

    auction: ClassVar[bool] = False

    @dataclass(frozen=True, config=PARAMS_CONFIG)
    class Params:
        """Parameters of ``posted_adaptive``."""

        step: Annotated[
            float,
            pydantic.Field(ge=0.0, lt=1.0, description="relative price change per round"),
        ] = 0.1
        target_demand: Annotated[
            float,
            pydantic.Field(
                ge=0.0,
                le=1e6,
                description="buyers above which demand counts as excess (when the market "
                "states no capacity)",
            ),
        ] = 3.0
        floor: Annotated[
            float,
            pydantic.Field(ge=0.001, le=1.0, description="lowest price, as a multiple of list"),
        ] = 0.1
        cap: Annotated[
            float,
            pydantic.Field(ge=1.0, le=1e3, description="highest price, as a multiple of list"),
        ] = 10.0

    def __init__(self, params: Params):
        self.params = params

    def prices(self, m: FeedMarket) -> np.ndarray:
        p = self.params
        lp = np.asarray(m.list_prices, dtype=float)
        cur = np.asarray(m.current, dtype=float)
        cur = np.where(np.isfinite(cur) & (cur > 0), cur, lp)
        demand = np.asarray(m.demand, dtype=float)
        target = np.asarray(m.capacity, dtype=float) if m.capacity is not None else p.target_demand
        factor = np.where(demand > target, 1.0 + p.step, np.where(demand <= 0, 1.0 - p.step, 1.0))
        return np.clip(cur * factor, p.floor * lp, p.cap * lp)


@PRICING.register("bonding_curve")
class BondingCurve:
    """Access priced on a power bonding curve of the feed's curation shares.

    Formula: ``price_p = max(slope * S_p ** exponent, list_p)`` with ``S_p`` the
    curation shares outstanding on feed p (``m.curation``; 0 when the market has no
    curation). Curators buy shares with :meth:`buy` and sell them with :meth:`sell`
    (Bancor formulas on the curve ``m * s ** n``: reserve ``m S^(n+1) / (n+1)``,
    ``CW = 1 / (n+1)``), so early curators of a feed that becomes popular gain as later
    ones push the price up.

    Source: curation markets (de la Rouviere 2017, "Tokens 2.0: curation markets") on
    Bancor bonding curves (Bancor white paper, 2017); MECHANISMS.md, "Curation markets
    and bonding curves". Deliberate difference: the curve prices the data access as
    well as the curation share, and never below the provider's list price (at zero
    supply the curve's price is 0, and access cannot be free).
    """

    auction: ClassVar[bool] = False

    @dataclass(frozen=True, config=PARAMS_CONFIG)
    class Params:
        """Parameters of ``bonding_curve``."""

        slope: Annotated[
            float,
            pydantic.Field(ge=1e-9, le=1e6, description="m in price = m * supply ** n"),
        ] = 0.01
        exponent: Annotated[
            float,
            pydantic.Field(ge=0.0, le=5.0, description="n in price = m * supply ** n"),
        ] = 1.0

    def __init__(self, params: Params):
        self.params = params

    @property
    def connector_weight(self) -> float:
        """``CW = 1 / (n + 1)`` of the power curve."""
        return 1.0 / (self.params.exponent + 1.0)

    def spot(self, supply) -> np.ndarray:
        """Curve price ``m * S ** n`` at ``supply``."""
        return self.params.slope * np.asarray(supply, dtype=float) ** self.params.exponent

    def buy(self, supply, deposit) -> np.ndarray:
        """Shares minted for ``deposit`` tokens at ``supply`` (also from 0 supply).

        ``curve_supply(R(S) + deposit) - S``, equal to :func:`bancor_buy` with the
        curve's reserve and CW whenever S > 0.
        """
        p = self.params
        supply = np.asarray(supply, dtype=float)
        reserve = curve_reserve(p.slope, p.exponent, supply)
        return curve_supply(p.slope, p.exponent, reserve + np.asarray(deposit, float)) - supply

    def sell(self, supply, amount) -> np.ndarray:
        """Tokens returned for burning ``amount`` shares at ``supply`` (:func:`bancor_sell`)."""
        p = self.params
        reserve = curve_reserve(p.slope, p.exponent, supply)
        return bancor_sell(supply, reserve, self.connector_weight, amount)

    def prices(self, m: FeedMarket) -> np.ndarray:
        lp = np.asarray(m.list_prices, dtype=float)
        supply = np.zeros_like(lp) if m.curation is None else np.asarray(m.curation, float)
        return np.maximum(self.spot(np.maximum(supply, 0.0)), lp)


# --- auctions --------------------------------------------------------------------------


def _affordable(bids: np.ndarray, budgets: np.ndarray) -> np.ndarray:
    """Keep each buyer's bids, highest first, while their sum stays within its budget.

    Greedy by value: a bid larger than what is left of the budget is dropped and the
    next (smaller) one is tried. Ties keep the lower feed index first. Vectorized over
    buyers, one pass per feed.
    """
    n, P = bids.shape
    order = np.argsort(-bids, axis=1, kind="stable")
    sorted_bids = np.take_along_axis(bids, order, axis=1)
    left = np.maximum(np.asarray(budgets, dtype=float), 0.0).copy()
    keep_sorted = np.zeros((n, P), dtype=bool)
    for j in range(P):
        b = sorted_bids[:, j]
        ok = (b > 0) & (b <= left)
        keep_sorted[:, j] = ok
        left -= np.where(ok, b, 0.0)
    keep = np.zeros((n, P), dtype=bool)
    np.put_along_axis(keep, order, keep_sorted, axis=1)
    return keep


@PRICING.register("auction")
class Auction:
    """Sealed-bid auction of a limited number of access slots per feed.

    Clearing, per feed p with ``k_p`` slots and reserve ``r_p`` (:meth:`clear`):

    1. Budgets: each buyer's bids at or above the reserve are taken highest first and
       kept while their sum stays within the buyer's budget; a bid larger than what is
       left is dropped (the next smaller one is still tried). Since no winner pays more
       than its bid, no buyer can owe more than its budget.
    2. Winners: the ``k_p`` highest remaining bids (ties to the lower buyer index).
    3. Price, the same for every winner of the feed:

       - ``second_price``: ``max(b_(k+1), r_p)``, the highest losing bid or the
         reserve. With one slot this is the Vickrey (second-price) auction; for k slots
         it is its generalization to unit demand (each buyer wants one slot of a feed),
         the (k+1)-th price auction, in which bidding one's value is dominant.
       - ``uniform_price``: ``max(b_(k), r_p)``, the lowest winning bid (the
         "stop-out" price of single-price Treasury auctions). With one slot it is a
         first-price auction. It is not truthful; buyers are expected to shade.

    ``prices(m)`` returns the reserve (list price) for the engine's bookkeeping.

    Source: Vickrey (1961), "Counterspeculation, auctions, and competitive sealed
    tenders", J. Finance 16(1); Krishna (2010), "Auction Theory", ch. 12-13 (uniform-
    price and Vickrey multi-unit auctions); U.S. Treasury single-price auctions (31 CFR
    356, the highest accepted yield sets the price for all). Deliberate difference:
    Krishna's uniform-price auction charges the highest losing bid, which with unit
    demand is exactly ``second_price``; so ``uniform_price`` here uses the other common
    convention, the lowest accepted bid. The budget rule is this project's own.
    """

    auction: ClassVar[bool] = True

    @dataclass(frozen=True, config=PARAMS_CONFIG)
    class Params:
        """Parameters of ``auction``."""

        kind: Annotated[
            Literal["second_price", "uniform_price"],
            pydantic.Field(
                description="what winners pay: the highest losing bid (second_price) or "
                "the lowest winning bid (uniform_price), at least the reserve"
            ),
        ] = "second_price"

    def __init__(self, params: Params):
        self.params = params

    def prices(self, m: FeedMarket) -> np.ndarray:
        return np.array(m.list_prices, dtype=float)

    def clear(self, a: AuctionInput) -> AuctionOutcome:
        bids = np.nan_to_num(np.asarray(a.bids, dtype=float), nan=0.0, posinf=0.0, neginf=0.0)
        n, P = bids.shape
        reserve = np.maximum(np.broadcast_to(np.asarray(a.reserve, dtype=float), (P,)), 0.0)
        slots = np.broadcast_to(np.maximum(np.asarray(a.slots), 0).astype(int), (P,))
        eligible = (bids > 0) & (bids >= reserve[None, :])
        eligible &= _affordable(np.where(eligible, bids, 0.0), np.asarray(a.budgets, float))
        ranked = np.where(eligible, bids, -np.inf)
        order = np.argsort(-ranked, axis=0, kind="stable")  # per feed, best bid first
        rank = np.empty((n, P), dtype=int)
        np.put_along_axis(rank, order, np.arange(n)[:, None].repeat(P, axis=1), axis=0)
        won = eligible & (rank < slots[None, :])
        winners = won.sum(axis=0)
        # sorted bids per feed, padded with -inf so index n exists
        sorted_bids = np.vstack([np.take_along_axis(ranked, order, axis=0), np.full(P, -np.inf)])
        cols = np.arange(P)
        if self.params.kind == "second_price":
            pivot = sorted_bids[np.minimum(slots, n), cols]  # highest losing bid
        else:
            pivot = sorted_bids[np.maximum(winners - 1, 0), cols]  # lowest winning bid
        price = np.maximum(pivot, reserve)
        payments = np.where(won, price[None, :], 0.0)
        return AuctionOutcome(won=won, payments=payments)
