"""Submission rules: when submitted predictions become visible (registry ``SUBMISSION``).

Contract: ``visible_before_close() -> bool``: whether other participants can read a
submission (and copy it) before the round closes.
"""

from __future__ import annotations

from pydantic.dataclasses import dataclass

from mechanisms.registry import PARAMS_CONFIG, SUBMISSION

__all__ = ["Open"]


@SUBMISSION.register("open")
class Open:
    """Predictions are public as soon as they are submitted, so they can be copied.

    Formula: ``visible_before_close = True``.

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
