"""Data providers: each lists one feed (a feature group seen through its own noise)."""

from __future__ import annotations

from agents.base import MarketAgent


class Provider(MarketAgent):
    """A data provider: sells access to its feed each round and bonds tokens on it."""

    kind = "provider"

    @property
    def quality(self) -> float:
        """True data quality of the feed, 1 / (1 + noise^2)."""
        return float(self.model.providers.quality[self.slot])

    @property
    def price(self) -> float:
        """Price of one round of access this round (tokens)."""
        return float(self.model.providers.price[self.slot])
