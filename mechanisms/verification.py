"""Verification rules: how claimed computation is checked (registry ``VERIFICATION``).

Contract: ``verify(v: VerificationInput, rng) -> VerificationOutcome``.
"""

from __future__ import annotations

import numpy as np
from pydantic.dataclasses import dataclass

from mechanisms.base import VerificationInput, VerificationOutcome
from mechanisms.registry import PARAMS_CONFIG, VERIFICATION

__all__ = ["NoVerification"]


@VERIFICATION.register("none")
class NoVerification:
    """Claims are accepted unchecked: nothing is checked, nothing caught, no fees.

    Formula: ``checked_i = caught_i = False``, ``fee_i = 0``.

    Source: the baseline Truebit argues against (Teutsch & Reitwiessner 2017, "A
    scalable verification solution for blockchains": without verifiers a wrong
    result is never challenged); MECHANISMS.md, "Truebit".
    """

    @dataclass(frozen=True, config=PARAMS_CONFIG)
    class Params:
        """``none`` has no parameters."""

    def __init__(self, params: Params):
        self.params = params

    def verify(self, v: VerificationInput, rng: np.random.Generator) -> VerificationOutcome:
        n = int(np.shape(v.did_work)[0])
        return VerificationOutcome(
            caught=np.zeros(n, dtype=bool), checked=np.zeros(n, dtype=bool), fees=np.zeros(n)
        )
