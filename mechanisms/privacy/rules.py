"""The privacy rules registered in ``PRIVACY``."""

from __future__ import annotations

from typing import ClassVar

from pydantic.dataclasses import dataclass

from mechanisms.base import ComputeCost
from mechanisms.registry import PARAMS_CONFIG, PRIVACY

__all__ = ["Plaintext"]


@PRIVACY.register("plaintext")
class Plaintext:
    """Buyers receive the raw data: training is free and the data leaks.

    Formula: ``cost = ComputeCost(seconds=0, bytes_sent=0, fee=0)``; ``leaks = True``.

    Source: data marketplaces that deliver the file itself, such as Ocean Protocol's
    download access (a datatoken redeemed for the dataset URL; MECHANISMS.md, "Ocean
    Protocol") and Algorithmia DanKu's revealed training data. Transfer cost of the
    download is not charged here.
    """

    leaks: ClassVar[bool] = True

    @dataclass(frozen=True, config=PARAMS_CONFIG)
    class Params:
        """``plaintext`` has no parameters."""

    def __init__(self, params: Params):
        self.params = params

    def training_cost(self, rows: int, features: int) -> ComputeCost:
        return ComputeCost()
