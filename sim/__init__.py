"""The mlmarket engine: scenarios, the market model, runs and the command line.

The notebook API::

    from sim import load_scenario, run
    result = run(load_scenario("baseline", ["run.rounds=50"]))
    result.model, result.agents, result.ledger, result.summary
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Scenario": "sim.config",
    "ScenarioError": "sim.config",
    "load_scenario": "sim.config",
    "RunResult": "sim.runner",
    "run": "sim.runner",
    "MarketModel": "sim.model",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'sim' has no attribute {name!r}")
