"""Slashing rules: what happens to the stake behind a negative payout (registry ``SLASHING``).

Contract: ``slash(payouts, stakes) -> np.ndarray`` of tokens burned from each stake,
with ``0 <= burned <= stake``. The ``cascade_to_providers`` parameter both rules
carry is read by the engine, not here: it burns that fraction of a developer's burn
again from the bonds of the providers whose feeds the model used.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
import pydantic
from pydantic.dataclasses import dataclass

from mechanisms.registry import PARAMS_CONFIG, SLASHING

__all__ = ["BurnNegative", "NoSlashing"]

_CASCADE_DESCRIPTION = (
    "fraction of a developer's burn additionally burned from the bonds of the "
    "providers whose feeds the model used (the engine applies it)"
)


@SLASHING.register("none")
class NoSlashing:
    """Nothing is burned: negative payouts cost the submitter nothing.

    Formula: ``burned_i = 0``.

    Source: the no-stake baseline, as in Numerai's unstaked submissions and
    Algorithmia DanKu (submitters stake nothing; MECHANISMS.md). It isolates the
    effect of slashing when compared with ``burn_negative``.
    """

    @dataclass(frozen=True, config=PARAMS_CONFIG)
    class Params:
        """Parameters of ``none``."""

        cascade_to_providers: Annotated[
            float, pydantic.Field(ge=0.0, le=1.0, description=_CASCADE_DESCRIPTION)
        ] = 0.0

    def __init__(self, params: Params):
        self.params = params

    def slash(self, payouts: np.ndarray, stakes: np.ndarray) -> np.ndarray:
        return np.zeros(np.shape(stakes), dtype=float)


@SLASHING.register("burn_negative")
class BurnNegative:
    """A negative payout is burned from the stake, never more than the stake.

    Formula: ``burned_i = min(max(-payout_i, 0), max(stake_i, 0))``.

    Source: Numerai, "a negative payout is burned from the stake" (Numerai
    documentation, "Staking"; MECHANISMS.md, "Numerai (stake, score, burn)").
    """

    @dataclass(frozen=True, config=PARAMS_CONFIG)
    class Params:
        """Parameters of ``burn_negative``."""

        cascade_to_providers: Annotated[
            float, pydantic.Field(ge=0.0, le=1.0, description=_CASCADE_DESCRIPTION)
        ] = 0.0

    def __init__(self, params: Params):
        self.params = params

    def slash(self, payouts: np.ndarray, stakes: np.ndarray) -> np.ndarray:
        owed = np.maximum(-np.asarray(payouts, dtype=float), 0.0)
        return np.minimum(owed, np.maximum(np.asarray(stakes, dtype=float), 0.0))
