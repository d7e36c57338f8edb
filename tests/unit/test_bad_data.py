"""Bad-data providers (``population.providers.bad``): each kind's feed, strategy and quality.

Every test builds a small ``MarketModel`` and records, round by round, the honest feeds
the task produced and what ``_bad_feeds`` turned them into (under ``plaintext`` privacy,
what buyers receive).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from agents.base import GONE, STRATEGY
from sim.config import ScenarioError, load_scenario
from sim.model import MarketModel
from sim.runner import collect, without_adversaries

BAD = "population.providers.bad"
MIX = [f"{BAD}.noise=0.2", f"{BAD}.flipped=0.2", f"{BAD}.stale=0.2", f"{BAD}.resold=0.2"]
FIXED = ["population.providers.count=40", "population.dynamics.enabled=false"]


def stepped(overrides, rounds):
    """A small model stepped ``rounds`` times; per round: (t, honest feeds, sold, target)."""
    model = MarketModel(load_scenario("small", [*FIXED, *overrides]))
    log, drawn = [], {}
    corrupt, draw = model._bad_feeds, model.task.draw

    def draw_spy():
        drawn["x"], drawn["r"] = draw()
        return drawn["x"], drawn["r"]

    def spy(feeds):
        honest = feeds.copy()
        sold = corrupt(feeds)
        log.append((model.t, honest, sold.copy(), drawn["r"]))
        return sold

    model.task.draw, model._bad_feeds = draw_spy, spy
    for _ in range(rounds):
        model.step()
    return model, log


def rows_of(model, kind):
    return np.flatnonzero(model.providers.strategy == STRATEGY[kind])


def test_genesis_strategies_follow_the_shares():
    sc = load_scenario("small", ["population.providers.count=2000", *MIX[:2], f"{BAD}.resold=0.3"])
    s = MarketModel(sc).providers.strategy
    # binomial, n = 2000: 4 standard deviations are below 0.04
    for kind, share in (("noise", 0.2), ("flipped", 0.2), ("stale", 0.0), ("resold", 0.3)):
        assert abs(np.mean(s == STRATEGY[kind]) - share) < 0.04, kind
    assert abs(np.mean(s == STRATEGY["honest"]) - 0.3) < 0.04


def test_entrants_draw_their_strategies_too():
    model = MarketModel(load_scenario("small", [*FIXED, f"{BAD}.noise=0.5"]))
    model.step()
    before = len(model.providers)
    model._add_providers(400)
    s = model.providers.strategy[before:]
    assert abs(np.mean(s == STRATEGY["noise"]) - 0.5) < 0.1  # 4 sd of a binomial(400, 0.5)


def test_noise_feeds_carry_no_signal():
    model, log = stepped(MIX, 12)
    noise = rows_of(model, "noise")
    assert noise.size
    honest = np.concatenate([h[noise].ravel() for _, h, _, _ in log])
    sold = np.concatenate([s[noise].ravel() for _, _, s, _ in log])
    assert np.isclose(sold.std(), 1.0, atol=0.05) and abs(sold.mean()) < 0.05
    n = sold.size
    assert abs(np.corrcoef(honest, sold)[0, 1]) < 4 / np.sqrt(n)
    # each feature against the target, pooled over rounds and assets
    for p in noise:
        z = np.concatenate([s[p] for _, _, s, _ in log])  # (rounds * A, k)
        r = np.concatenate([y for *_, y in log])
        for j in range(z.shape[1]):
            assert abs(np.corrcoef(z[:, j], r)[0, 1]) < 4 / np.sqrt(r.size)
    assert (model.providers.quality[noise] == 0).all()


def test_flipped_feeds_are_the_honest_feed_negated_at_the_flip_probability():
    model, log = stepped([f"{BAD}.flipped=0.5", f"{BAD}.flip_probability=0.3"], 40)
    P = model.providers
    flipped = rows_of(model, "flipped")
    assert flipped.size >= 10
    signs = []
    for _, h, s, _ in log:
        for p in flipped:
            if np.array_equal(s[p], h[p]):
                signs.append(1)
            else:
                np.testing.assert_array_equal(s[p], -h[p])
                signs.append(-1)
    n = len(signs)
    assert abs(np.mean(np.array(signs) == -1) - 0.3) < 4 * np.sqrt(0.3 * 0.7 / n)
    honest = rows_of(model, "honest")
    for _, h, s, _ in log:  # the others sell their honest feeds
        np.testing.assert_array_equal(s[honest], h[honest])
    # usable share of the feed: (1 - 2p)^2 of the honest quality
    np.testing.assert_allclose(P.quality[flipped], 0.16 * model.task.quality(P.noise[flipped]))


def test_flipped_quality_is_zero_at_the_default_probability():
    model = MarketModel(load_scenario("small", [*FIXED, f"{BAD}.flipped=1.0"]))
    assert (model.providers.strategy == STRATEGY["flipped"]).all()
    assert (model.providers.quality == 0).all()


def test_stale_feeds_are_the_honest_feed_of_lag_rounds_ago():
    lag = 2
    model, log = stepped([f"{BAD}.stale=0.5", f"{BAD}.stale_lag={lag}"], 8)
    stale = rows_of(model, "stale")
    assert stale.size
    honest_at = {t: h for t, h, _, _ in log}
    for t, _, s, _ in log:
        if t > lag:
            np.testing.assert_array_equal(s[stale], honest_at[t - lag][stale])
        else:  # before enough history: noise, not the honest feed of any round
            assert not any(np.allclose(s[stale], g[stale]) for g in honest_at.values())
    assert (model.providers.quality[stale] == 0).all()
    assert len(model.stale_feeds) == lag  # the ring holds the last `lag` rounds only


def test_resold_feeds_copy_a_genuine_source_exactly():
    model, log = stepped(MIX, 5)
    P = model.providers
    resold = rows_of(model, "resold")
    assert resold.size
    src = P.source[resold]
    assert (src >= 0).all()
    assert (P.strategy[src] == STRATEGY["honest"]).all()
    np.testing.assert_array_equal(P.quality[resold], P.quality[src])
    for _, _, s, _ in log:
        np.testing.assert_array_equal(s[resold], s[src])
    assert (P.source[rows_of(model, "honest")] == -1).all()


def test_a_reseller_whose_source_leaves_finds_another():
    model, _ = stepped(MIX, 2)
    P = model.providers
    r = rows_of(model, "resold")[0]
    old = int(P.source[r])
    P.status[old] = GONE
    model.step()
    new = int(P.source[r])
    assert new != old and P.status[new] != GONE and P.strategy[new] == STRATEGY["honest"]
    np.testing.assert_array_equal(model.feeds[r], model.feeds[new])
    assert P.quality[r] == P.quality[new]


def test_a_reseller_without_any_genuine_source_sells_noise():
    model, log = stepped([f"{BAD}.resold=1.0"], 3)
    P = model.providers
    assert (P.strategy == STRATEGY["resold"]).all()
    assert (P.source == -1).all() and (P.quality == 0).all()
    for _, h, s, _ in log:
        assert not np.allclose(s, h)


def test_shares_are_checked_together_and_named():
    with pytest.raises(ScenarioError, match=r"noise \+ flipped \+ stale \+ resold add up to 1\.2"):
        load_scenario("small", [f"{BAD}.noise=0.6", f"{BAD}.stale=0.6"])
    with pytest.raises(ScenarioError, match=r"population\.providers\.bad\.resold"):
        load_scenario("small", [f"{BAD}.resold=1.5"])
    with pytest.raises(ScenarioError, match=r"did you mean 'flipped'"):
        load_scenario("small", [f"{BAD}.fliped=0.1"])


def test_honest_runs_are_unchanged_by_the_bad_data_hooks(monkeypatch):
    """All shares 0 (other keys changed): the hooks draw nothing and change nothing."""

    def tables(overrides):
        model = MarketModel(load_scenario("small", ["run.rounds=8", *overrides]))
        for _ in range(8):
            model.step()
        res = collect(model)
        return res.model, res.agents

    with_keys = tables([f"{BAD}.stale_lag=7", f"{BAD}.flip_probability=0.1"])
    with monkeypatch.context() as m:  # the engine as it was before bad data existed
        m.setattr(MarketModel, "_bad_feeds", lambda self, feeds: feeds)
        m.setattr(MarketModel, "_draw_bad_data", lambda self, idx: None)
        before = tables([])
    pd.testing.assert_frame_equal(with_keys[0], before[0])
    pd.testing.assert_frame_equal(with_keys[1], before[1])


def test_same_seed_same_bad_feeds_and_another_seed_differs():
    _, a = stepped(MIX, 4)
    _, b = stepped(MIX, 4)
    _, c = stepped([*MIX, "run.seed=1"], 4)
    for (_, _, sa, _), (_, _, sb, _), (_, _, sc, _) in zip(a, b, c, strict=True):
        np.testing.assert_array_equal(sa, sb)
        assert not np.array_equal(sa, sc)


def test_the_counterfactual_switches_bad_data_off():
    sc = without_adversaries(load_scenario("poisoned_data"))
    bad = sc.population.providers.bad
    assert bad.noise == bad.flipped == bad.stale == bad.resold == 0
    assert MarketModel(load_scenario(sc.to_dict(), ["run.rounds=1"])).bad_rng is None
