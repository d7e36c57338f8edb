"""The model is a Mesa model and the actors are Mesa agents; phases run in order."""

from __future__ import annotations

import mesa

from agents.arbitrageur import Arbitrageur
from agents.exchange import ExchangeAgent
from agents.forecaster import Developer, FreeRider
from agents.metamodel import Metamodel
from agents.provider import Provider
from sim import load_scenario
from sim.model import PHASES, MarketModel


def test_mesa_model_agents_and_phases():
    m = MarketModel(load_scenario("small", ["population.free_riders.count=2"]))
    assert isinstance(m, mesa.Model)
    by_type = {cls: len(m.agents_by_type[cls]) for cls in (Provider, Developer, FreeRider)}
    assert by_type == {Provider: 5, Developer: 20, FreeRider: 2}
    assert all(isinstance(a, mesa.Agent) for a in m.agents)
    (dex,) = m.agents_by_type[ExchangeAgent]
    assert len(dex.pools) == 1 + m.A  # token/usd and one pool per traded asset
    assert len(m.agents_by_type[Metamodel]) == 1 and len(m.agents_by_type[Arbitrageur]) >= 1
    assert PHASES == (
        "observe",
        "price",
        "buy",
        "train",
        "verify",
        "submit",
        "aggregate",
        "trade",
        "resolve",
        "adapt",
        "record",
    )
    for _ in range(4):
        m.step()
    assert all(m.phase_seconds[p] > 0 for p in PHASES)
    dev = next(iter(m.agents_by_type[Developer]))
    assert dev.tokens == m.ledger.balance(dev.wallet, "token")
    assert dev.account == f"developer:{dev.unique_id}"


def test_leaving_agents_are_removed_from_mesa():
    sc = load_scenario(
        "small",
        [
            "run.rounds=30",
            "population.dynamics.exit_after=2",
            "population.providers.price=20.0",
            "population.dynamics.enabled=true",
        ],
    )
    m = MarketModel(sc)
    start = len(m.agents)
    for _ in range(30):
        m.step()
    gone = sum(r["exits"] for r in m.model_rows)
    assert gone > 0
    assert len(m.agents) == start - gone + sum(r["entries"] for r in m.model_rows)
