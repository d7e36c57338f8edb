"""The metamodel contract: combines submissions, trades on them, funds the rewards."""

from __future__ import annotations

import numpy as np

from agents.base import MarketAgent


class Metamodel(MarketAgent):
    """The contract that aggregates submissions and trades the assets' pools.

    Each round it sells the positions it opened ``lag`` rounds ago (that round's
    realized profit or loss is the usd it gets back minus the usd it paid, fees and
    price impact included, all through the ledger), then invests ``position_fraction``
    of its usd long in the assets the metamodel ranks above the median, in proportion
    to the positive part of the gaussianized metamodel prediction.
    """

    kind = "metamodel"

    def __init__(self, model, wallet: int, lag: int, n_assets: int):
        super().__init__(model, 0, wallet, None)
        self.units = np.zeros((lag + 1, n_assets))
        self.cost = np.zeros(lag + 1)

    def close(self, slot: int) -> float:
        """Sell the positions held in ring ``slot``; return the realized P&L in usd."""
        m = self.model
        units = self.units[slot]
        held = units > 0
        proceeds = 0.0
        if held.any():
            pools = [p for p, h in zip(m.asset_pools, held, strict=True) if h]
            out = m.exchange.swap_many(
                np.full(held.sum(), self.wallet),
                pools,
                np.ones(held.sum(), bool),
                units[held],
                phase="trade",
                reason="metamodel_close",
            )
            proceeds = float(out.sum())
        pnl = proceeds - self.cost[slot]
        self.units[slot] = 0.0
        self.cost[slot] = 0.0
        return pnl

    def open(self, slot: int, meta: np.ndarray, fraction: float) -> None:
        """Invest ``fraction`` of the contract's usd along the positive part of ``meta``."""
        m = self.model
        budget = fraction * m.ledger.balance(self.wallet, "usd")
        w = np.maximum(meta, 0.0)
        if budget <= 0 or w.sum() <= 0:
            return
        spend = budget * w / w.sum()
        buy = spend > 0
        pools = [p for p, b in zip(m.asset_pools, buy, strict=True) if b]
        got = m.exchange.swap_many(
            np.full(buy.sum(), self.wallet),
            pools,
            np.zeros(buy.sum(), bool),
            spend[buy],
            phase="trade",
            reason="metamodel_open",
        )
        self.units[slot, buy] = got
        self.cost[slot] = float(spend[buy].sum())
