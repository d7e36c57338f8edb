"""Pricing rules: how data feeds are priced each round (registry ``PRICING``).

Contract: ``prices(m: FeedMarket) -> np.ndarray``, the price of each feed this round.
"""

from __future__ import annotations

import numpy as np
from pydantic.dataclasses import dataclass

from mechanisms.base import FeedMarket
from mechanisms.registry import PARAMS_CONFIG, PRICING

__all__ = ["Fixed"]


@PRICING.register("fixed")
class Fixed:
    """Each provider charges its own list price, unchanged from round to round.

    Formula: ``price_p = list_price_p``.

    Source: Ocean Protocol's fixed-rate exchange, where the publisher sets the price
    of a datatoken (Ocean Protocol documentation, "Fixed pricing"); MECHANISMS.md,
    "Ocean Protocol".
    """

    @dataclass(frozen=True, config=PARAMS_CONFIG)
    class Params:
        """``fixed`` has no parameters."""

    def __init__(self, params: Params):
        self.params = params

    def prices(self, m: FeedMarket) -> np.ndarray:
        return np.array(m.list_prices, dtype=float)
