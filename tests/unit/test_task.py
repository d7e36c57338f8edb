"""The cross-section task: explained variance, feeds, quality."""

from __future__ import annotations

import numpy as np

from sim.config import TaskConfig
from sim.task import CrossSectionTask


def test_signal_variance_and_best_correlation():
    cfg = TaskConfig(assets=4000, feature_groups=5, features_per_group=3, signal=0.5, noise=1.0)
    task = CrossSectionTask(cfg, np.random.default_rng(0))
    assert np.isclose(task.beta @ task.beta, 0.5)
    x, r = task.draw()
    # Var(x @ beta) = 0.5 and Var(r) = 1.5, so corr(x @ beta, r) = sqrt(1/3)
    assert np.isclose(np.var(r), 1.5, rtol=0.1)
    assert np.isclose(np.corrcoef(x @ task.beta, r)[0, 1], np.sqrt(0.5 / 1.5), atol=0.04)


def test_feeds_are_the_group_plus_own_noise():
    cfg = TaskConfig(assets=5000, feature_groups=3, features_per_group=2)
    task = CrossSectionTask(cfg, np.random.default_rng(1))
    x, _ = task.draw()
    groups = np.array([0, 2, 2])
    noise = np.array([0.0, 0.0, 2.0])
    z = task.observe(x, groups, noise)
    assert z.shape == (3, 5000, 2)
    np.testing.assert_array_equal(z[0], x[:, 0:2])
    np.testing.assert_array_equal(z[1], x[:, 4:6])
    assert np.isclose(np.var(z[2] - x[:, 4:6]), 4.0, rtol=0.05)


def test_normals_drawn_ahead_are_the_ones_drawn_when_needed():
    from concurrent.futures import ThreadPoolExecutor

    cfg = TaskConfig(assets=30, feature_groups=3, features_per_group=2)
    inline, ahead = (CrossSectionTask(cfg, np.random.default_rng(7)) for _ in range(2))
    groups, noise = np.array([0, 1, 2, 2]), np.array([0.5, 1.0, 0.0, 2.0])
    with ThreadPoolExecutor(max_workers=1) as pool:
        # ahead by the right count, by too few (the rest drawn when needed), by too
        # many (kept for the next round), and twice before a use
        for providers in (4, 1, 9, 0, 2, 4):
            if providers == 2:
                ahead.draw_ahead(1, pool)
            ahead.draw_ahead(providers, pool)
            x1, r1 = inline.draw()
            x2, r2 = ahead.draw()
            np.testing.assert_array_equal(x1, x2)
            np.testing.assert_array_equal(r1, r2)
            np.testing.assert_array_equal(
                inline.observe(x1, groups, noise), ahead.observe(x2, groups, noise)
            )


def test_quality_is_signal_share():
    assert np.allclose(CrossSectionTask.quality(np.array([0.0, 1.0, 3.0])), [1.0, 0.5, 0.1])


def test_scenario_reference_is_in_sync():
    from pathlib import Path

    from sim.docs import render

    doc = Path(__file__).resolve().parents[2] / "docs" / "scenarios.md"
    assert doc.read_text(encoding="utf-8").strip() == render().strip(), (
        "docs/scenarios.md is stale: run `python -m sim.docs > docs/scenarios.md`"
    )
