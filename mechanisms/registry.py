"""Registries of mechanisms, one per family, filled where each rule is defined.

A rule is a small class with a nested ``Params`` frozen dataclass (a pydantic
dataclass, so scenario values are validated with precise messages) and the one
method its family's contract names (see :mod:`mechanisms.base`). It joins its
family with a decorator::

    @REWARD.register("numerai", claims={"sybil_proof"})
    class Numerai:
        '''stake * clip(pf * (w_corr * CORR + w_mmc * MMC), -clip, clip) ...'''

        @dataclass(frozen=True, config=PARAMS_CONFIG)
        class Params:
            w_corr: float = 0.5

        def __init__(self, params: Params): ...

Scenario files name rules only by their registry name; :func:`build` validates the
parameters and returns an instance.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, fields, is_dataclass
from typing import Any

from pydantic import ConfigDict, ValidationError

#: Configuration every rule's ``Params`` dataclass uses: unknown keys are errors,
#: no silent coercion of strings to numbers (ints are accepted for floats).
PARAMS_CONFIG = ConfigDict(extra="forbid", strict=True)


class UnknownRuleError(LookupError):
    """A scenario named a rule that no registry holds."""


@dataclass(frozen=True)
class RuleInfo:
    """What a registry knows of one rule."""

    family: str
    name: str
    cls: type
    claims: frozenset[str]

    @property
    def summary(self) -> str:
        """First line of the rule's docstring."""
        doc = inspect.getdoc(self.cls) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""

    @property
    def params_type(self) -> type:
        """The rule's frozen parameter dataclass."""
        return self.cls.Params

    def defaults(self) -> dict[str, Any]:
        """Parameter names and their default values."""
        out: dict[str, Any] = {}
        for f in fields(self.params_type):
            if f.default is not MISSING:
                out[f.name] = f.default
            elif f.default_factory is not MISSING:  # pragma: no cover - not used yet
                out[f.name] = f.default_factory()
        return out


class Registry:
    """Maps rule names of one family to their classes."""

    def __init__(self, family: str, description: str, contract: str):
        self.family = family
        self.description = description
        self.contract = contract
        self._rules: dict[str, RuleInfo] = {}

    def register(
        self, name: str, *, claims: set[str] | frozenset[str] = frozenset()
    ) -> Callable[[type], type]:
        """Class decorator adding a rule under ``name``."""

        def deco(cls: type) -> type:
            if name in self._rules:
                raise ValueError(f"{self.family} rule {name!r} is registered twice")
            params = getattr(cls, "Params", None)
            if params is None or not is_dataclass(params):
                raise TypeError(f"{self.family} rule {name!r} needs a nested Params dataclass")
            if not callable(getattr(cls, self.contract, None)):
                raise TypeError(f"{self.family} rule {name!r} must define {self.contract}()")
            cls.name = name
            cls.family = self.family
            cls.claims = frozenset(claims)
            self._rules[name] = RuleInfo(self.family, name, cls, frozenset(claims))
            return cls

        return deco

    def unregister(self, name: str) -> type:
        """Remove rule ``name`` (e.g. one a test registered for a while); return its class.

        Scenarios that name it no longer validate. An unknown name is an error.
        """
        info = self.get(name)
        del self._rules[name]
        return info.cls

    def names(self) -> list[str]:
        """Registered rule names, sorted."""
        return sorted(self._rules)

    def __contains__(self, name: object) -> bool:
        return name in self._rules

    def __iter__(self):
        return iter(self._rules[n] for n in self.names())

    def get(self, name: str) -> RuleInfo:
        """The rule called ``name``; an error names the nearest valid one."""
        try:
            return self._rules[name]
        except KeyError:
            raise UnknownRuleError(
                unknown_message(f"{self.family} rule", name, self.names())
            ) from None

    def validate_params(self, name: str, params: Mapping[str, Any]) -> Any:
        """Validated ``Params`` instance of rule ``name`` (raises ValidationError)."""
        info = self.get(name)
        return info.params_type(**dict(params))

    def build(self, name: str, params: Mapping[str, Any] | None = None) -> Any:
        """Instance of rule ``name`` with validated parameters."""
        info = self.get(name)
        return info.cls(self.validate_params(name, params or {}))


def unknown_message(what: str, value: object, allowed: list[str]) -> str:
    """'unknown X 'v'; did you mean 'w'? allowed: a, b, c'."""
    msg = f"unknown {what} {value!r}"
    close = difflib.get_close_matches(str(value), allowed, n=1, cutoff=0.5)
    if close:
        msg += f"; did you mean {close[0]!r}?"
    return msg + f" (allowed: {', '.join(allowed)})"


REWARD = Registry("reward", "who is paid what when a round resolves", contract="payouts")
SLASHING = Registry(
    "slashing", "what happens to the stake behind a negative payout", contract="slash"
)
AGGREGATION = Registry(
    "aggregation", "how submissions are weighted into the metamodel", contract="weights"
)
PRICING = Registry("pricing", "how data feeds are priced each round", contract="prices")
VERIFICATION = Registry("verification", "how claimed computation is checked", contract="verify")
PRIVACY = Registry("privacy", "how developers reach the providers' data", contract="training_cost")
SUBMISSION = Registry(
    "submission", "when submitted predictions become visible", contract="visible_before_close"
)
ATTRIBUTION = Registry(
    "attribution", "how a model's gain or loss flows on to its data providers", contract="attribute"
)
HOSTING = Registry("hosting", "where data and models live, and what that costs", contract="host")

#: Every family, in the order scenario files list them.
FAMILIES: dict[str, Registry] = {
    r.family: r
    for r in (
        REWARD,
        SLASHING,
        AGGREGATION,
        PRICING,
        VERIFICATION,
        PRIVACY,
        SUBMISSION,
        ATTRIBUTION,
        HOSTING,
    )
}


def load_all() -> dict[str, Registry]:
    """Import every module that registers rules, then return the registries."""
    from mechanisms import (  # noqa: F401  (imported for their registrations)
        aggregation,
        attribution,
        hosting,
        pricing,
        privacy,
        reward,
        slashing,
        submission,
        verification,
    )

    return FAMILIES


__all__ = [
    "FAMILIES",
    "PARAMS_CONFIG",
    "Registry",
    "RuleInfo",
    "UnknownRuleError",
    "ValidationError",
    "load_all",
    "unknown_message",
]
