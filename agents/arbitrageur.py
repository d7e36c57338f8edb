"""Arbitrageurs: pull every asset pool to its external fair price each round."""

from __future__ import annotations

from agents.base import MarketAgent


class Arbitrageur(MarketAgent):
    """Trades each asset pool to its fair price (the profit-maximizing single trade)."""

    kind = "arbitrageur"

    def step(self) -> None:
        """Close the gap between every asset pool and its fair price."""
        m = self.model
        profit = m.exchange.arbitrage(self.wallet, m.asset_pools, m.fair_prices, phase="trade")
        self.profit += float(profit.sum())

    def __init__(self, model, slot: int, wallet: int):
        super().__init__(model, slot, wallet, None)
        self.profit = 0.0
