"""The decentralized exchange: constant-product pools whose reserves live in the ledger.

A pool is a ledger account (``pool:BASE/QUOTE``); its reserves are that account's
balances, read from the ledger every time and never stored anywhere else. A swap is one
atomic ledger batch of two legs (trader -> pool the input, pool -> trader the output),
priced by :mod:`mechanisms.amm` (Uniswap v2). The fee stays in the pool, as in Uniswap v2,
so the invariant ``x * y`` never falls. Plain Python (no Mesa): an :class:`Exchange`
needs only a :class:`~sim.ledger.Ledger`.

The output of a swap is computed from the requested input. If the ledger's float-dust
rule (see :mod:`sim.ledger`) trims a trader's input to its balance, the pool receives
up to a relative ``1e-9`` less than the price assumed; this is below the fee's effect
on ``x * y`` for any fee above about ``1e-9``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import mesa
import numpy as np

from mechanisms import amm
from sim.ledger import Ledger


class ExchangeError(Exception):
    """A swap or pool operation the exchange refuses."""


class SlippageError(ExchangeError):
    """A swap would pay out less than the trader's ``min_out``."""


@dataclass(frozen=True)
class Pool:
    """A constant-product pool: its name, its two assets and its ledger account."""

    name: str  # "pool:token/usd"
    base: str
    quote: str
    account: int


class ExchangeAgent(mesa.Agent):
    """The exchange as a participant of the Mesa model: it owns the pools.

    Trades are made by the agents that trade (arbitrageurs, the metamodel, entrants and
    leavers) through :attr:`exchange`; the pools' reserves are their ledger balances.
    """

    kind = "exchange"

    def __init__(self, model: mesa.Model, exchange: Exchange):
        super().__init__(model)
        self.exchange = exchange

    @property
    def pools(self) -> list[Pool]:
        """Every pool of the exchange."""
        return self.exchange.pools


class Exchange:
    """Constant-product pools (Uniswap v2 math) settled through a ledger."""

    def __init__(self, ledger: Ledger, fee: float = 0.003):
        if not 0.0 <= fee < 1.0:
            raise ExchangeError(f"fee must be in [0, 1), got {fee!r}")
        self.ledger = ledger
        self.fee = float(fee)
        self._pools: dict[tuple[str, str], Pool] = {}
        self._pool_ids: dict[int, tuple[int, int]] = {}  # pool account -> asset ids

    # ------------------------------------------------------------------ pools

    def create_pool(
        self,
        base: str,
        quote: str,
        reserve_base: float,
        reserve_quote: float,
        *,
        phase: str = "genesis",
        funder: int | None = None,
    ) -> Pool:
        """Open the pool's ledger account and put its reserves in it.

        The reserves are minted (genesis liquidity) unless ``funder``, an account, provides
        them (a developer listing its model's token, for example).
        """
        L = self.ledger
        if base == quote:
            raise ExchangeError(f"a pool needs two different assets, got {base!r} twice")
        if (base, quote) in self._pools or (quote, base) in self._pools:
            raise ExchangeError(f"a pool for {base}/{quote} already exists")
        if not (
            reserve_base > 0
            and reserve_quote > 0
            and np.isfinite(reserve_base)
            and np.isfinite(reserve_quote)
        ):
            raise ExchangeError(
                f"pool {base}/{quote}: reserves must be finite and > 0, got "
                f"{reserve_base!r} and {reserve_quote!r}"
            )
        ids = [L.asset_id(base), L.asset_id(quote)]
        name = f"pool:{base}/{quote}"
        account = L.open_account(name)
        L.transfer(
            L.MINT if funder is None else funder,
            account,
            np.array(ids),
            np.array([reserve_base, reserve_quote], dtype=float),
            phase=phase,
            reason="pool_reserves",
        )
        pool = Pool(name, base, quote, account)
        self._pools[(base, quote)] = pool
        self._pool_ids[account] = (ids[0], ids[1])
        return pool

    def pool(self, base: str, quote: str = "usd") -> Pool:
        """The pool trading ``base`` against ``quote``."""
        try:
            return self._pools[(base, quote)]
        except KeyError:
            raise ExchangeError(
                f"no pool for {base}/{quote}; pools: {sorted(p.name for p in self.pools)}"
            ) from None

    @property
    def pools(self) -> list[Pool]:
        """All pools in creation order."""
        return list(self._pools.values())

    def reserves(self, pool: Pool) -> tuple[float, float]:
        """``(base, quote)`` reserves, read from the pool account's ledger balances."""
        L = self.ledger
        return L.balance(pool.account, pool.base), L.balance(pool.account, pool.quote)

    def _reserves(
        self, pools: Sequence[Pool]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Accounts, base ids, quote ids and reserves of many pools (vectorized reads).

        Raises :class:`ExchangeError` if a pool appears twice (every caller trades each
        pool once). A pool's asset ids are recorded when it is created, so callers
        trading a different subset of the pools each round look no asset up by name.
        """
        L, known = self.ledger, self._pool_ids
        accounts = [p.account for p in pools]
        if len(set(accounts)) != len(accounts):
            raise ExchangeError("a trade on several pools needs distinct pools (one trade each)")
        pair = [
            known.get(a) or (L.asset_id(p.base), L.asset_id(p.quote))
            for a, p in zip(accounts, pools, strict=True)
        ]
        ids = np.array(pair, dtype=np.int64).reshape(-1, 2)
        acc, base, quote = np.array(accounts, dtype=np.int64), ids[:, 0], ids[:, 1]
        return acc, base, quote, L.balances(acc, base), L.balances(acc, quote)

    def price(self, pool: Pool) -> float:
        """Spot price, quote per base: ``y / x``."""
        return float(amm.spot_price(*self.reserves(pool)))

    def invariant(self, pool: Pool) -> float:
        """The constant product ``x * y``."""
        x, y = self.reserves(pool)
        return x * y

    # ------------------------------------------------------------------ swaps

    def swap(
        self,
        trader: int,
        pool: Pool,
        asset_in: str,
        amount_in: float,
        *,
        phase: str,
        reason: str,
        min_out: float = 0.0,
    ) -> float:
        """Pay ``amount_in`` of ``asset_in`` (the pool's base or quote) into ``pool``.

        Returns the amount of the other asset paid out (:func:`mechanisms.amm.amount_out`).
        Both legs are one atomic ledger batch; an output below ``min_out`` raises
        :class:`SlippageError` and moves nothing. A zero amount does nothing.
        """
        if asset_in == pool.base:
            asset_out = pool.quote
        elif asset_in == pool.quote:
            asset_out = pool.base
        else:
            raise ExchangeError(
                f"{pool.name} trades {pool.base} and {pool.quote}, not {asset_in!r}"
            )
        amount_in = float(amount_in)
        if not (amount_in >= 0.0 and np.isfinite(amount_in)):
            raise ExchangeError(
                f"{pool.name}: amount_in must be finite and >= 0, got {amount_in!r}"
            )
        if amount_in == 0.0:
            return 0.0
        L = self.ledger
        x = L.balance(pool.account, asset_in)
        y = L.balance(pool.account, asset_out)
        out = float(amm.amount_out(amount_in, x, y, self.fee))
        if out < min_out:
            raise SlippageError(
                f"{pool.name}: {amount_in!r} {asset_in} buys {out!r} {asset_out}, "
                f"below min_out {min_out!r}"
            )
        L.transfer(
            np.array([trader, pool.account]),
            np.array([pool.account, trader]),
            np.array([L.asset_id(asset_in), L.asset_id(asset_out)]),
            np.array([amount_in, out]),
            phase=phase,
            reason=reason,
        )
        return out

    def swap_sequence(
        self,
        traders: np.ndarray,
        pool: Pool,
        asset_in: str,
        amounts_in: np.ndarray,
        *,
        phase: str,
        reason: str,
    ) -> np.ndarray:
        """Many traders swap into one pool, one after another, in the order given.

        The same trades as calling :meth:`swap` for each trader in turn (each priced on
        the reserves the previous one left, with the same floating-point operations, so
        the amounts are identical), recorded as one ledger batch with the entries in the
        same order. Zero amounts are skipped. Returns the amounts paid out.
        """
        if asset_in not in (pool.base, pool.quote):
            raise ExchangeError(
                f"{pool.name} trades {pool.base} and {pool.quote}, not {asset_in!r}"
            )
        asset_out = pool.quote if asset_in == pool.base else pool.base
        traders = np.asarray(traders, dtype=np.int64)
        dx = np.asarray(amounts_in, dtype=float)
        if np.any(~(dx >= 0.0)) or not np.all(np.isfinite(dx)):
            raise ExchangeError(f"{pool.name}: amounts_in must be finite and >= 0, got {dx!r}")
        out = np.zeros(dx.size)
        keep = np.flatnonzero(dx > 0.0)
        if keep.size == 0:
            return out
        L = self.ledger
        x = L.balance(pool.account, asset_in)
        y = L.balance(pool.account, asset_out)
        g = float(amm._gamma(self.fee))
        got = []
        for a in dx[keep].tolist():  # sequential by nature: each trade moves the price
            gdx = g * a
            o = gdx * y / (x + gdx)
            got.append(o)
            x += a
            y -= o
        out[keep] = got
        n = keep.size
        who = traders[keep]
        acc = np.full(n, pool.account, dtype=np.int64)
        legs = np.empty(2 * n, dtype=np.int64)
        src, dst, amt = legs.copy(), legs.copy(), np.empty(2 * n)
        src[0::2], src[1::2] = who, acc
        dst[0::2], dst[1::2] = acc, who
        legs[0::2], legs[1::2] = L.asset_id(asset_in), L.asset_id(asset_out)
        amt[0::2], amt[1::2] = dx[keep], out[keep]
        L.transfer(src, dst, legs, amt, phase=phase, reason=reason)
        return out

    def swap_many(
        self,
        traders: np.ndarray,
        pools: Sequence[Pool],
        sell_base: np.ndarray,
        amounts_in: np.ndarray,
        *,
        phase: str,
        reason: str,
    ) -> np.ndarray:
        """One swap per pool (pools distinct), priced on the reserves before the batch.

        ``sell_base[i]`` pays base into ``pools[i]`` for quote, otherwise quote for base.
        All legs of all swaps are one atomic ledger batch (a trader appearing several
        times must hold its total input). Returns the amounts paid out.
        """
        pools = list(pools)
        n = len(pools)
        traders, sell, dx = (
            v if v.shape == (n,) else np.broadcast_to(v, (n,))
            for v in (
                np.asarray(traders, dtype=np.int64),
                np.asarray(sell_base, dtype=bool),
                np.asarray(amounts_in, dtype=float),
            )
        )
        if n == 0:
            return np.zeros(0)
        acc, base, quote, rb, rq = self._reserves(pools)
        if not (dx.min() >= 0.0 and dx.max() < np.inf):  # NaN fails both
            raise ExchangeError(f"amounts_in must be finite and >= 0, got {dx!r}")
        out = np.asarray(
            amm.amount_out(dx, np.where(sell, rb, rq), np.where(sell, rq, rb), self.fee),
            dtype=float,
        ).reshape(n)
        in_id = np.where(sell, base, quote)
        out_id = np.where(sell, quote, base)
        self.ledger.transfer(
            np.concatenate([traders, acc]),
            np.concatenate([acc, traders]),
            np.concatenate([in_id, out_id]),
            np.concatenate([dx, out]),
            phase=phase,
            reason=reason,
        )
        return out

    def arbitrage(
        self,
        trader: int,
        pools: Sequence[Pool],
        fair_prices: np.ndarray,
        *,
        phase: str,
        max_quote: np.ndarray | None = None,
        reason: str = "arbitrage",
    ) -> np.ndarray:
        """Trade each pool toward its fair price; return the profit per pool at fair price.

        Each pool's trade is :func:`mechanisms.amm.arbitrage_trade`, capped by what the
        trader holds: sells of base are capped by its base balance and executed first;
        then buys are capped by ``max_quote`` (per pool) and scaled down together so that
        the total quote paid per quote asset fits the trader's balance after the sells.
        A capped trade is smaller than the optimum, so it is still profitable (the
        profit is concave in the trade size and zero at zero). The profit of pool ``i``
        is ``quote received - p_i * base paid`` or ``p_i * base received - quote paid``.
        """
        pools = list(pools)
        n = len(pools)
        p = np.broadcast_to(np.asarray(fair_prices, dtype=float), (n,))
        profit = np.zeros(n)
        if n == 0:
            return profit
        L = self.ledger
        acc, base, quote, rb, rq = self._reserves(pools)
        base_in, quote_in = (
            np.asarray(v, dtype=float).reshape(n) for v in amm.arbitrage_trade(rb, rq, p, self.fee)
        )
        who = np.full(n, trader, dtype=np.int64)
        base_in = np.minimum(base_in, L.balances(who, base))
        sell = np.flatnonzero(base_in > 0)
        if sell.size:
            got = self.swap_many(
                who[sell],
                [pools[i] for i in sell],
                np.ones(sell.size, bool),
                base_in[sell],
                phase=phase,
                reason=reason,
            )
            profit[sell] = got - p[sell] * base_in[sell]
        if max_quote is not None:
            quote_in = np.minimum(quote_in, np.broadcast_to(np.asarray(max_quote, float), (n,)))
        buy = np.flatnonzero(quote_in > 0)
        if buy.size:
            need = np.bincount(quote[buy], quote_in[buy], minlength=len(L.asset_names))
            qids = np.flatnonzero(need)
            have = L.balances(np.full(qids.size, trader, dtype=np.int64), qids)
            scale = np.ones_like(need)
            scale[qids] = np.minimum(1.0, have / need[qids])
            spend = quote_in[buy] * scale[quote[buy]]
            keep = spend > 0
            buy, spend = buy[keep], spend[keep]
            if buy.size:
                got = self.swap_many(
                    who[buy],
                    [pools[i] for i in buy],
                    np.zeros(buy.size, bool),
                    spend,
                    phase=phase,
                    reason=reason,
                )
                profit[buy] = p[buy] * got - spend
        return profit
