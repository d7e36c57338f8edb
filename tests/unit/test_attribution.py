"""Unit tests of the attribution rules: purchase_share and feature_shapley."""

import numpy as np
import pytest
from pydantic import ValidationError

from mechanisms.attribution import purchase_split, slot_contributions
from mechanisms.base import AttributionInput
from mechanisms.registry import ATTRIBUTION, load_all
from mechanisms.scoring import numerai_corr, numerai_corr_rows
from mechanisms.valuation import TabularGame, all_coalitions, exact_shapley

load_all()


def random_input(n=6, K=4, P=5, A=40, k=3, seed=0, unused=0.3):
    rng = np.random.default_rng(seed)
    target = rng.normal(size=A)
    feeds = rng.normal(size=(P, A, k))
    feeds[0, :, 0] += 2 * target  # provider 0 carries signal
    picks = rng.integers(0, P, size=(n, K))
    picks[rng.random((n, K)) < unused] = -1
    weights = rng.normal(size=(n, K * k))
    return AttributionInput(picks=picks, weights=weights, feeds=feeds, target=target)


def test_purchase_share_by_hand():
    # row 0 bought feeds in slots 0 and 1: 1/2 each; row 1 bought nothing: zeros;
    # row 2 bought slots 0 and 2: 1/2 each
    picks = np.array([[0, 2, -1], [-1, -1, -1], [1, -1, 1]])
    a = AttributionInput(
        picks=picks, weights=np.zeros((3, 3)), feeds=np.zeros((3, 4, 1)), target=np.arange(4.0)
    )
    shares = ATTRIBUTION.build("purchase_share", {}).attribute(a)
    np.testing.assert_allclose(shares, [[0.5, 0.5, 0], [0, 0, 0], [0.5, 0, 0.5]])
    np.testing.assert_allclose(purchase_split(picks >= 0), shares)


def test_slot_contributions_sum_to_the_model():
    a = random_input(seed=1)
    C, used = slot_contributions(a)
    n, K = a.picks.shape
    k = a.feeds.shape[2]
    for j in range(n):
        pred = np.zeros(a.feeds.shape[1])
        for s in range(K):
            if a.picks[j, s] >= 0:
                pred += a.feeds[a.picks[j, s]] @ a.weights[j, s * k : (s + 1) * k]
        np.testing.assert_allclose(C[j].sum(axis=0), pred, atol=1e-12)
    assert (C[~used] == 0).all()


def test_feature_shapley_equals_enumeration_of_the_definition():
    # For each model: U(S) = numerai_corr(sum of the slot terms in S, target), tabulated
    # by brute force, then valued by exact enumeration.
    a = random_input(n=5, K=4, seed=2, unused=0.25)
    rule = ATTRIBUTION.build("feature_shapley", {})
    phi = rule.values(a)
    C, used = slot_contributions(a)
    for j in range(a.picks.shape[0]):
        slots = np.flatnonzero(used[j])
        m = len(slots)
        table = np.zeros(1 << m)
        for code, mask in enumerate(all_coalitions(m)):
            if mask.any():
                table[code] = numerai_corr(C[j, slots[mask]].sum(axis=0), a.target)
        expected = exact_shapley(TabularGame(table)) if m else np.zeros(0)
        np.testing.assert_allclose(phi[j, slots], expected, atol=1e-12)
        assert (phi[j, ~used[j]] == 0).all()
        # efficiency: the values sum to the model's own CORR
        full = numerai_corr(C[j].sum(axis=0), a.target) if m else 0.0
        assert phi[j].sum() == pytest.approx(full, abs=1e-12)


def opposed_input():
    # One model, two slots whose terms are x and -x (feed 1 is feed 0 negated, same
    # weights): U(1) = rho = CORR(x), U(2) = CORR(-x) = -rho, U(12) = CORR(0) = 0.
    # phi_1 = (rho - 0) / 2 + (0 - (-rho)) / 2 = rho;  phi_2 = -rho.
    rng = np.random.default_rng(3)
    target = rng.normal(size=30)
    x = target + rng.normal(size=30)
    feeds = np.stack([x[:, None], -x[:, None]])  # (2, 30, 1)
    a = AttributionInput(
        picks=np.array([[0, 1]]), weights=np.array([[1.0, 1.0]]), feeds=feeds, target=target
    )
    return a, numerai_corr(x, target)


def test_feature_shapley_opposed_feeds_by_hand():
    a, rho = opposed_input()
    assert rho > 0
    clip = ATTRIBUTION.build("feature_shapley", {"negative": "clip"})
    np.testing.assert_allclose(clip.values(a), [[rho, -rho]], atol=1e-12)
    # clip: the harmful feed gets nothing of the gain; abs: |rho| / (2 |rho|) each
    np.testing.assert_allclose(clip.attribute(a), [[1.0, 0.0]])
    np.testing.assert_allclose(
        ATTRIBUTION.build("feature_shapley", {"negative": "abs"}).attribute(a), [[0.5, 0.5]]
    )


def test_feature_shapley_falls_back_to_equal_split():
    # Two slots holding the same term x with CORR(x) < 0: phi = CORR/2 each, both < 0;
    # under clip no slot has positive value, so the split is the equal one.
    rng = np.random.default_rng(4)
    target = rng.normal(size=30)
    x = -target + rng.normal(size=30)
    a = AttributionInput(
        picks=np.array([[0, 0, -1]]),
        weights=np.ones((1, 3)),
        feeds=x[None, :, None],
        target=target,
    )
    rule = ATTRIBUTION.build("feature_shapley", {})
    c = numerai_corr(x, target)
    np.testing.assert_allclose(rule.values(a), [[c / 2, c / 2, 0.0]], atol=1e-12)
    np.testing.assert_allclose(rule.attribute(a), [[0.5, 0.5, 0.0]])
    # a slot with zero weights is a null player: no share of a positive gain
    a0 = AttributionInput(
        picks=np.array([[0, 0]]),
        weights=np.array([[1.0, 0.0]]),
        feeds=(-x)[None, :, None],
        target=target,
    )
    np.testing.assert_allclose(rule.attribute(a0), [[1.0, 0.0]])


def test_feature_shapley_monte_carlo_beyond_exact_max():
    a = random_input(n=3, K=8, P=9, seed=5, unused=0.0)
    exact = ATTRIBUTION.build("feature_shapley", {}).values(a)
    mc = ATTRIBUTION.build(
        "feature_shapley", {"exact_max": 4, "permutations": 3000, "seed": 1}
    ).values(a)
    np.testing.assert_allclose(mc.sum(axis=1), exact.sum(axis=1), atol=1e-12)  # efficient
    assert np.abs(mc - exact).max() < 0.02
    # the model's own CORR is what is shared
    C, _ = slot_contributions(a)
    np.testing.assert_allclose(exact.sum(axis=1), numerai_corr_rows(C.sum(axis=1), a.target))


@pytest.mark.parametrize("name", ["purchase_share", "feature_shapley"])
def test_shares_are_a_split_of_used_slots(name):
    a = random_input(n=30, K=5, seed=6, unused=0.5)
    a.picks[0] = -1  # a model without feeds
    shares = ATTRIBUTION.build(name, {}).attribute(a)
    used = a.picks >= 0
    assert shares.shape == a.picks.shape
    assert (shares >= 0).all() and (shares[~used] == 0).all()
    rows = used.any(axis=1)
    np.testing.assert_allclose(shares[rows].sum(axis=1), 1.0)
    assert (shares[~rows] == 0).all()


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("purchase_share", {"gain_share": 1.5}),
        ("purchase_share", {"gain_share": -0.1}),
        ("feature_shapley", {"gain_share": 2.0}),
        ("feature_shapley", {"negative": "square"}),
        ("feature_shapley", {"exact_max": 21}),
        ("feature_shapley", {"permutations": 0}),
        ("feature_shapley", {"tolerance": 1.0}),
        ("feature_shapley", {"seed": -1}),
    ],
)
def test_bad_parameters_are_rejected(name, params):
    with pytest.raises(ValidationError):
        ATTRIBUTION.build(name, params)


def test_gain_share_default():
    for name in ("purchase_share", "feature_shapley"):
        assert ATTRIBUTION.build(name, {}).params.gain_share == 0.1
