"""Ridge from shared statistics vs numpy.linalg.lstsq; feed choice; predictions."""

from __future__ import annotations

import numpy as np

from agents.forecaster import choose_feeds, feed_columns, fit_ridge, predict


def _window(rng, rounds=6, assets=30, providers=5, k=2):
    feeds = rng.normal(size=(rounds, providers, assets, k))
    y = rng.normal(size=(rounds, assets))
    z = np.transpose(feeds, (0, 2, 1, 3)).reshape(rounds * assets, providers * k)
    return feeds, z, y.reshape(-1)


def test_ridge_zero_penalty_equals_lstsq():
    rng = np.random.default_rng(0)
    _, z, y = _window(rng)
    gram, xty = z.T @ z, z.T @ y
    picks = np.array([[0, 3, -1], [4, -1, -1], [1, 2, 0]])
    cols = feed_columns(picks, 2)
    w = fit_ridge(gram, xty, cols, ridge=0.0, rows=len(y))
    for j in range(picks.shape[0]):
        c = cols[j][cols[j] >= 0]
        ref = np.linalg.lstsq(z[:, c], y, rcond=None)[0]
        np.testing.assert_allclose(w[j, : c.size], ref, rtol=1e-6, atol=1e-8)
        assert np.all(w[j, c.size :] == 0.0)


def test_ridge_penalty_matches_augmented_lstsq():
    # ridge = least squares on X stacked over sqrt(lambda) I (Hoerl & Kennard 1970)
    rng = np.random.default_rng(1)
    _, z, y = _window(rng)
    lam = 0.5
    picks = np.array([[2, 1]])
    cols = feed_columns(picks, 2)[0]
    w = fit_ridge(z.T @ z, z.T @ y, cols[None], ridge=lam, rows=len(y))[0]
    penalty = lam * len(y)
    xa = np.vstack([z[:, cols], np.sqrt(penalty) * np.eye(cols.size)])
    ya = np.concatenate([y, np.zeros(cols.size)])
    np.testing.assert_allclose(w, np.linalg.lstsq(xa, ya, rcond=None)[0], rtol=1e-6)


def test_feed_columns_layout():
    cols = feed_columns(np.array([[2, -1]]), 3)
    assert cols.tolist() == [[6, 7, 8, -1, -1, -1]]


def test_predict_is_the_linear_model_on_the_chosen_feeds():
    rng = np.random.default_rng(2)
    feeds = rng.normal(size=(4, 10, 2))
    picks = np.array([[1, 3], [0, -1]])
    w = rng.normal(size=(2, 4))
    out = predict(feeds, picks, w)
    np.testing.assert_allclose(out[0], feeds[1] @ w[0, :2] + feeds[3] @ w[0, 2:])
    np.testing.assert_allclose(out[1], feeds[0] @ w[1, :2])


def test_choose_feeds_greedy_by_value_within_budget():
    rng = np.random.default_rng(3)
    values = np.array([[0.1, 0.5, 0.3, 0.2], [0.4, 0.1, 0.2, 0.3]])
    prices = np.array([1.0, 1.0, 1.0, 5.0])
    available = np.array([True, True, True, True])
    out = choose_feeds(values, prices, available, np.array([2.0, 10.0]), 2, 0.0, rng)
    assert out[0].tolist() == [1, 2]  # two best, both affordable
    assert out[1].tolist() == [0, 3]  # cumulative price 6 <= 10
    out = choose_feeds(values, prices, available, np.array([1.5, 0.5]), 2, 0.0, rng)
    assert out[0].tolist() == [1, -1] and out[1].tolist() == [-1, -1]


def test_choose_feeds_distinct_available_and_explores():
    rng = np.random.default_rng(4)
    n, p = 500, 12
    values = np.tile(np.linspace(1, 0, p), (n, 1))
    available = np.ones(p, bool)
    available[0] = False
    out = choose_feeds(values, np.ones(p), available, np.full(n, 100.0), 3, 0.3, rng)
    assert not (out == 0).any()
    for row in out:
        assert len(set(row.tolist())) == 3
    explored = (out[:, 2] != 3).mean()  # greedy would always take 1, 2, 3
    assert 0.15 < explored < 0.35
