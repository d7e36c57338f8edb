"""Submission rules: when submitted predictions become visible (registry ``SUBMISSION``).

Contract: ``visible_before_close() -> bool``: whether other participants can read a
submission (and copy it) before the round closes; and ``reveal_outcome(n, rng) ->
np.ndarray`` (bool, shape ``(n,)``): which of ``n`` submissions count this round (a
rule without a reveal step returns all True). A submission whose entry is False is
void: it is not scored and the engine forfeits ``params.forfeit`` of its stake.

The commitment itself is the pure pair :func:`commit` / :func:`verify_reveal`.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

import numpy as np
import pydantic
from pydantic.dataclasses import dataclass

from mechanisms.registry import PARAMS_CONFIG, SUBMISSION

__all__ = ["CommitReveal", "Open", "commit", "verify_reveal"]


def commit(predictions: np.ndarray, salt: bytes) -> str:
    """Hex SHA-256 commitment to ``predictions`` under a secret ``salt``.

    Formula: ``sha256(bytes_le_f64(predictions) || salt)``: the predictions as
    little-endian float64 in C order, then the salt. The byte order is fixed so a
    commitment made on one machine verifies on any other. The shape is not committed
    (a reshaped array with the same values in C order has the same commitment).

    Source: hash commit-reveal as in the ENS auction registrar's sealed bids (EIP-162,
    ``shaBid``) and Algorithmia DanKu's hashed data groups (MECHANISMS.md).
    """
    data = np.ascontiguousarray(predictions, dtype="<f8").tobytes()
    return hashlib.sha256(data + bytes(salt)).hexdigest()


def verify_reveal(commitment: str, predictions: np.ndarray, salt: bytes) -> bool:
    """Whether ``(predictions, salt)`` opens ``commitment`` (constant-time comparison)."""
    return hmac.compare_digest(commit(predictions, salt), str(commitment))


@SUBMISSION.register("open")
class Open:
    """Predictions are public as soon as they are submitted, so they can be copied.

    Formula: ``visible_before_close = True``; every submission counts
    (``reveal_outcome`` is all True).

    Source: Algorithmia DanKu, where models are submitted in the clear to the
    contract during the submission window and copying is only deterred by the
    earlier-submission tie break (MECHANISMS.md, "Algorithmia DanKu").
    """

    @dataclass(frozen=True, config=PARAMS_CONFIG)
    class Params:
        """``open`` has no parameters."""

    def __init__(self, params: Params):
        self.params = params

    def visible_before_close(self) -> bool:
        return True

    def reveal_outcome(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Every one of the ``n`` submissions counts (no reveal step; draws nothing)."""
        return np.ones(int(n), dtype=bool)


@SUBMISSION.register("commit_reveal")
class CommitReveal:
    """Only a hash is published before the deadline; predictions are revealed after it.

    Formula: ``visible_before_close = False``. A submitter publishes ``commit(p, salt)``
    before the round closes and reveals ``(p, salt)`` within ``reveal_window`` rounds
    after it; the reveal is valid iff ``verify_reveal`` holds. In each round of the
    window a pending reveal fails independently with probability ``miss_probability``,
    so a submission misses the whole window with ``q = miss_probability **
    reveal_window``: ``valid_i = u_i >= q`` with ``u_i`` uniform on [0, 1). A submission
    without a valid reveal is not scored and forfeits ``forfeit * stake``.

    Source: the sealed-bid commit-reveal of the ENS auction registrar (EIP-162,
    ``HashRegistrarSimplified.sol``: bids are hashes during the bidding period and
    must be revealed in the 48-hour reveal period; an unrevealed bid gets back only
    0.5 % of its deposit, so ``forfeit`` defaults to 0.995). Deliberate difference:
    a missed reveal is drawn at random (lateness, lost salts) rather than chosen, and the
    engine resolves the reveal within the round (the window only sets the miss chance)
    instead of hashing every prediction; :func:`commit` and :func:`verify_reveal` are the
    commitment itself, for users who model reveals one by one.
    """

    @dataclass(frozen=True, config=PARAMS_CONFIG)
    class Params:
        """Parameters of ``commit_reveal``."""

        reveal_window: Annotated[
            int,
            pydantic.Field(
                ge=1, le=52, description="rounds after the close in which a reveal is accepted"
            ),
        ] = 1
        miss_probability: Annotated[
            float,
            pydantic.Field(
                ge=0.0,
                le=1.0,
                description="chance a submitter fails to reveal validly in time",
            ),
        ] = 0.01
        forfeit: Annotated[
            float,
            pydantic.Field(
                ge=0.0,
                le=1.0,
                description="share of the stake forfeited on a missing, late or invalid reveal",
            ),
        ] = 0.995

    def __init__(self, params: Params):
        self.params = params

    def visible_before_close(self) -> bool:
        return False

    def reveal_outcome(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Which of ``n`` submissions reveal validly; always draws ``n`` uniforms."""
        miss = self.params.miss_probability**self.params.reveal_window
        return rng.random(int(n)) >= miss
