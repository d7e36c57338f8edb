"""The collusion ring (buys only its own feeds, pumps its listed models) and the whales."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from agents.base import STRATEGY
from agents.whale import opening_trade
from mechanisms import amm
from sim import load_scenario, run
from sim.config import ScenarioError
from sim.model import MarketModel
from sim.runner import without_adversaries

RING = ["population.collusion.providers=2", "population.collusion.developers=6"]
LISTED = [
    "market.listings.enabled=true",
    "market.listings.min_resolved=2",
    "mechanisms.aggregation.name=price_weighted",
]
COLLUDER, WHALE = STRATEGY["colluder"], STRATEGY["whale"]


def _ring(model: MarketModel) -> tuple[np.ndarray, np.ndarray]:
    P, F = model.providers, model.forecasters
    return np.flatnonzero(P.strategy == COLLUDER), np.flatnonzero(F.strategy == COLLUDER)


def test_the_ring_is_drawn_among_genesis_agents_at_the_stated_size():
    model = MarketModel(load_scenario("small", RING))
    providers, developers = _ring(model)
    assert providers.size == 2 and developers.size == 6
    assert (model.forecasters.kind[developers] == 0).all()  # developers, not free riders


def test_no_ring_draws_nothing_from_the_population_stream():
    model = MarketModel(load_scenario("small"))
    state = model.streams.population.bit_generator.state
    model._mark_ring()
    assert model.streams.population.bit_generator.state == state
    assert not (model.providers.strategy == COLLUDER).any()


def test_a_ring_larger_than_the_population_is_rejected_with_its_path():
    with pytest.raises(ScenarioError, match=r"population\.collusion\.providers"):
        load_scenario("small", ["population.collusion.providers=6"])


def test_ring_developers_buy_only_ring_feeds():
    model = MarketModel(load_scenario("small", [*RING, "run.rounds=8"]))
    ring_p, ring_f = _ring(model)
    F, P = model.forecasters, model.providers
    bought_outside = 0
    for _ in range(8):
        model.step()
        picks = F.picks[ring_f]
        assert np.isin(picks[picks >= 0], ring_p).all()
        bought_outside += np.isin(F.picks[F.strategy != COLLUDER], ring_p, invert=True).sum()
    assert bought_outside > 0  # honest developers still buy elsewhere
    # and the ledger agrees: every data purchase of a ring developer paid a ring provider
    led = model.ledger.to_frame()
    buys = led[led["reason"] == "data_purchase"]
    names = model.ledger.account_name
    ring_dev = {names(int(w)) for w in F.wallet[ring_f]}
    ring_prov = {names(int(w)) for w in P.wallet[ring_p]}
    from_ring = buys[buys["src"].astype(str).isin(ring_dev)]
    assert len(from_ring) > 0
    assert set(from_ring["dst"].astype(str)) <= ring_prov


def _until_ring_listed(model: MarketModel) -> np.ndarray:
    for _ in range(model.config.run.rounds):
        model.step()
        owners = model.model_owner
        mine = np.flatnonzero(model.forecasters.strategy[owners] == COLLUDER)
        if mine.size:
            return mine
    raise AssertionError("no ring model was listed")


def test_pumping_buys_ring_model_tokens_through_the_exchange_and_lifts_their_price():
    model = MarketModel(
        load_scenario("small", [*RING, *LISTED, "population.collusion.pump=0.1", "run.rounds=20"])
    )
    mine = _until_ring_listed(model)
    F, L = model.forecasters, model.ledger
    n_pools = len(model.model_pools)
    before = np.array([model._model_price(i) for i in range(n_pools)])
    _, ring_f = _ring(model)
    buyers = ring_f[F.status[ring_f] == 0]
    liquid = L.balances(F.wallet[buyers], "token")
    n_entries = L.to_frame().shape[0]
    model._pump_ring()
    after = np.array([model._model_price(i) for i in range(n_pools)])
    assert (after[mine] > before[mine]).all()
    others = np.setdiff1d(np.arange(n_pools), mine)
    np.testing.assert_array_equal(after[others], before[others])
    # recorded in the ledger: pump * liquid tokens from each ring developer into the pools
    new = L.to_frame().iloc[n_entries:]
    pump = new[(new["reason"] == "ring_pump") & (new["asset"] == "token")]
    assert set(pump["dst"].astype(str)) == {model.model_pools[i].name for i in mine}
    assert pump["amount"].sum() == pytest.approx(0.1 * liquid.sum())
    L.check_invariants()


def test_pumping_raises_the_rings_weight_under_price_weighting():
    def weight(pump: float) -> float:  # mean over seeds: one seed's ring can run dry
        return np.mean(
            [
                run(
                    load_scenario(
                        "small",
                        [*RING, *LISTED, "run.rounds=30", f"population.collusion.pump={pump}"]
                        + [f"run.seed={seed}"],
                    )
                )
                .model["ring_weight"]
                .iloc[-10:]
                .mean()
                for seed in range(4)
            ]
        )

    assert weight(0.2) > weight(0.0) + 0.05


WHALE_SC = ["population.whales.count=1", "population.whales.trade_usd=20000", "run.rounds=8"]


def _spy(model: MarketModel, name: str, log: list) -> None:
    original = getattr(model, name)

    def spy():
        p = model.token_price
        original()
        log.append((model.t, p, model.token_price))

    setattr(model, name, spy)


@pytest.mark.parametrize(
    ("strategy", "sign"), [("pump_before_payout", 1.0), ("dump_before_payout", -1.0)]
)
def test_whales_trade_before_the_payouts_and_back_after_in_the_stated_direction(strategy, sign):
    model = MarketModel(
        load_scenario("small", [*WHALE_SC, f"population.whales.strategy={strategy}"])
    )
    (whale,) = np.flatnonzero(model.investors.strategy == WHALE)
    opens, closes = [], []
    _spy(model, "_whales_open", opens)
    _spy(model, "_whales_close", closes)
    for _ in range(8):
        model.step()
    lag = model.lag
    moved_open = {t: np.sign(b - a) for t, a, b in opens if b != a}
    moved_close = {t: np.sign(b - a) for t, a, b in closes if b != a}
    # opens in every round that resolves but the last; closes in the round after
    assert sorted(moved_open) == list(range(lag + 1, 8))
    assert sorted(moved_close) == list(range(lag + 2, 9))
    assert set(moved_open.values()) == {sign} and set(moved_close.values()) == {-sign}
    # the ledger: the opening leg is the last trade before the payouts (phase trade),
    # the closing leg the first entry of the next round (phase observe)
    led = model.ledger.to_frame().reset_index(drop=True)
    acct = f"investor:{model.investors.agent_id[whale]}"
    for t in range(lag + 1, 8):
        rnd = led[led["round"] == t]
        opened = rnd[rnd["reason"] == "whale_open"]
        assert set(opened["phase"].astype(str)) == {"trade"}
        paid = opened[opened["src"].astype(str) == acct]
        assert paid["asset"].astype(str).tolist() == ["usd" if sign > 0 else "token"]
        later = rnd.loc[opened.index.max() + 1 :, "phase"].astype(str)
        assert "trade" not in set(later)
        nxt = led[led["round"] == t + 1]
        assert nxt["reason"].astype(str).iloc[:2].tolist() == ["whale_close", "whale_close"]


def test_a_whales_round_trip_profit_is_in_the_agent_table():
    res = run(load_scenario("small", [*WHALE_SC, "run.rounds=10"]))
    led, agents = res.ledger, res.agents
    whales = agents[agents["strategy"] == "whale"]
    assert set(whales["type"].astype(str)) == {"investor"}
    acct = whales["account"].iloc[0]
    # the pump's realized profit each round: usd back minus usd paid, in tokens at the
    # price after the close (the model table's price is read later, so recompute)
    usd = led[(led["asset"] == "usd") & led["reason"].isin(["whale_open", "whale_close"])]
    paid = usd[usd["src"] == acct].groupby("round")["amount"].sum()
    back = usd[usd["dst"] == acct].groupby("round")["amount"].sum()
    gain = back.sub(paid.rename(lambda r: r + 1).reindex(back.index))
    payoff = whales.set_index("round")["payoff"]
    for t, g in gain.items():
        assert np.sign(payoff[t]) == np.sign(g) and payoff[t] != 0.0
    s = res.summary
    assert s["by_strategy"]["investor/whale"]["agents"] == 1
    # the whale's tokens and usd in the table are its ledger balances
    last = whales[whales["round"] == whales["round"].max()].iloc[0]
    tok = led[led["asset"] == "token"]
    bal = tok.loc[tok["dst"] == acct, "amount"].sum() - tok.loc[tok["src"] == acct, "amount"].sum()
    assert last["tokens"] == pytest.approx(bal)


def test_opening_trade_and_the_amm_price_impact():
    assert opening_trade("pump_before_payout", 50.0, 2.0, 30.0, 100.0) == ("usd", 30.0)
    assert opening_trade("dump_before_payout", 50.0, 2.0, 30.0, 100.0) == ("token", 25.0)
    with pytest.raises(ValueError, match="pump_before_payout"):
        opening_trade("hold", 1.0, 1.0, 1.0, 1.0)
    # buying with U usd moves the price p = y / x to p (1 + U / y)(1 + (1 - f) U / y)
    x, y, u, f = 1000.0, 2000.0, 500.0, 0.003
    d = amm.amount_out(u, y, x, f)
    assert (y + u) / (x - d) == pytest.approx(2.0 * (1 + u / y) * (1 + (1 - f) * u / y))


def test_without_counts_the_parameters_change_nothing():
    base = run(load_scenario("small", ["run.rounds=12"]))
    idle = run(
        load_scenario(
            "small",
            [
                "run.rounds=12",
                "population.collusion.pump=0.5",
                "population.whales.trade_usd=1000",
                "population.whales.strategy=dump_before_payout",
            ],
        )
    )
    assert base.summary == idle.summary
    pd.testing.assert_frame_equal(base.ledger, idle.ledger)
    pd.testing.assert_frame_equal(base.agents, idle.agents)
    reasons = set(base.ledger["reason"].astype(str))
    assert not reasons & {"ring_pump", "whale_open", "whale_close"}
    assert not base.model["ring_weight"].any()


def test_switching_adversaries_off_removes_the_ring_and_the_whales():
    off = without_adversaries(load_scenario("collusion_ring"))
    assert off.population.collusion.providers == 0
    assert off.population.collusion.developers == 0
    assert off.population.whales.count == 0
