"""Numerai CORR and MMC (mechanisms.scoring) against hand-computed cases.

Oracle: the steps of numerai-tools ``scoring.py`` (``numerai_corr``,
``correlation_contribution``), worked through by hand below. Normal quantiles used:
norm.ppf(0.125) = -1.1503493804, norm.ppf(0.375) = -0.3186393640, norm.ppf(0.5) = 0.
"""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from mechanisms.scoring import (
    correlation_contribution,
    correlation_contribution_rows,
    numerai_corr,
    numerai_corr_rows,
    rank_gaussianize,
    rank_gaussianize_rows,
    twice_ranks,
)

Q125 = 1.1503493803760083  # -norm.ppf(0.125) = norm.ppf(0.875)
Q375 = 0.31863936396437514  # -norm.ppf(0.375) = norm.ppf(0.625)


def test_quantile_constants():
    assert norm.ppf(0.875) == pytest.approx(Q125, abs=1e-15)
    assert norm.ppf(0.625) == pytest.approx(Q375, abs=1e-15)


@pytest.mark.parametrize("A", [1, 2, 3, 50, 64, 65, 300])
def test_twice_ranks_is_twice_scipy_rankdata_on_hard_rows(A):
    """Ties, values one ulp apart (the sort keys drop low bits, such rows are caught
    and argsorted), signed zeros, infinities, tiny and huge magnitudes."""
    from scipy.stats import rankdata

    rng = np.random.default_rng(A)
    x = rng.standard_normal((40, A))
    rows = [x, np.round(x * 2) / 2, x * 1e-310, x * 1e300]
    near = x.copy()
    if A > 1:
        near[:, 1] = np.nextafter(near[:, 0], np.inf)
        near[::2, -1] = np.nextafter(near[::2, 0], -np.inf)
        near[1, 0], near[2, -1] = np.inf, -np.inf
        near[3, :] = 0.0
        near[3, ::2] = -0.0
    rows.append(near)
    for X in rows:
        want = np.rint(2 * rankdata(X, axis=1, method="average")).astype(np.intp)
        np.testing.assert_array_equal(twice_ranks(X), want)
    assert twice_ranks(np.zeros((0, A))).shape == (0, A)


def test_rank_gaussianize_averages_ties():
    # x = [0.2, 0.5, 0.5, 0.9]: ranks 1, 2.5, 2.5, 4 (the tie shares (2 + 3) / 2)
    # (rank - 0.5) / 4 = 0.125, 0.5, 0.5, 0.875 -> ppf = -Q125, 0, 0, +Q125
    got = rank_gaussianize(np.array([0.2, 0.5, 0.5, 0.9]))
    np.testing.assert_allclose(got, [-Q125, 0.0, 0.0, Q125], atol=1e-15)


def test_rank_gaussianize_no_ties():
    # x = [3, 1, 4, 2]: ranks 3, 1, 4, 2 -> q = 0.625, 0.125, 0.875, 0.375
    got = rank_gaussianize(np.array([3.0, 1.0, 4.0, 2.0]))
    np.testing.assert_allclose(got, [Q375, -Q125, Q125, -Q375], atol=1e-15)


def test_rank_gaussianize_rows_is_per_row():
    X = np.array([[3.0, 1.0, 4.0, 2.0], [0.2, 0.5, 0.5, 0.9], [7.0, 7.0, 7.0, 7.0]])
    np.testing.assert_allclose(
        rank_gaussianize_rows(X),
        [[Q375, -Q125, Q125, -Q375], [-Q125, 0, 0, Q125], [0, 0, 0, 0]],
        atol=1e-15,
    )


def test_rank_gaussianize_rows_matches_direct_ppf():
    # The ppf lookup table must give exactly what norm.ppf gives on every entry.
    rng = np.random.default_rng(1)
    X = rng.integers(0, 6, size=(50, 17)).astype(float)  # many ties
    ranks = pd.DataFrame(X.T).rank(method="average").to_numpy().T
    np.testing.assert_array_equal(rank_gaussianize_rows(X), norm.ppf((ranks - 0.5) / 17))


def test_numerai_corr_hand_case():
    # predictions [0.2, 0.5, 0.5, 0.9] -> gaussianized [-Q125, 0, 0, Q125]
    #   ^1.5 keeping sign: [-a, 0, 0, a], a = Q125 ** 1.5 = 1.2337996; mean 0
    # target [0, 0.25, 1, 0.75], mean 0.5 -> centred [-0.5, -0.25, 0.5, 0.25]
    #   ^1.5 keeping sign: [-0.5**1.5, -0.125, 0.5**1.5, 0.125]
    #   = [-0.3535534, -0.125, 0.3535534, 0.125]; mean 0
    # Pearson = sum(x y) / sqrt(sum x^2 * sum y^2)
    #   sum x y = a * (0.125 + 0.3535534)
    #   sum x^2 = 2 a^2;  sum y^2 = 2 * 0.125 + 2 * 0.015625 = 0.28125
    #   -> (0.125 + 0.3535534) / sqrt(2 * 0.28125) = 0.4785534 / 0.75 = 0.6380712
    expected = (0.125 + 0.5**1.5) / 0.75
    assert expected == pytest.approx(0.6380711874576983, abs=1e-15)
    got = numerai_corr(np.array([0.2, 0.5, 0.5, 0.9]), np.array([0.0, 0.25, 1.0, 0.75]))
    assert got == pytest.approx(expected, abs=1e-12)


def test_numerai_corr_perfect_and_reversed():
    # A target equal to the gaussianized ranks of p: t = [-Q125, -Q375, Q375, Q125]
    # has mean 0, so both sides become the same vector after the 1.5 power: CORR = 1.
    # Reversed predictions give the negated vector: CORR = -1.
    p = np.array([1.0, 2.0, 3.0, 4.0])
    t = np.array([-Q125, -Q375, Q375, Q125])
    assert numerai_corr(p, t) == pytest.approx(1.0, abs=1e-12)
    assert numerai_corr(-p, t) == pytest.approx(-1.0, abs=1e-12)
    # A merely monotone target is not a perfect score: the powers differ in shape.
    assert numerai_corr(p, p) < 1.0 - 1e-3


def test_numerai_corr_invariant_to_monotone_transforms():
    rng = np.random.default_rng(7)
    p = rng.normal(size=200)
    t = rng.normal(size=200)
    base = numerai_corr(p, t)
    assert base != 0.0
    for q in (np.exp(p), p**3, 5.0 * p - 2.0, np.arctan(p)):
        assert numerai_corr(q, t) == pytest.approx(base, abs=1e-12)
    assert numerai_corr(-p, t) == pytest.approx(-base, abs=1e-12)


def test_numerai_corr_degenerate_inputs_give_zero():
    assert numerai_corr(np.array([1.0, 1.0, 1.0]), np.array([0.0, 1.0, 2.0])) == 0.0
    assert numerai_corr(np.array([1.0, 2.0, 3.0]), np.array([0.3, 0.3, 0.3])) == 0.0
    assert numerai_corr(np.array([1.0]), np.array([2.0])) == 0.0
    assert numerai_corr(np.array([]), np.array([])) == 0.0
    np.testing.assert_array_equal(numerai_corr_rows(np.zeros((0, 5)), np.arange(5.0)), [])


def test_scoring_rejects_nan_and_bad_shapes():
    with pytest.raises(ValueError, match="finite"):
        numerai_corr(np.array([1.0, np.nan, 2.0]), np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="expected 3"):
        numerai_corr_rows(np.ones((2, 3)), np.arange(4.0))
    with pytest.raises(ValueError, match="2-D"):
        correlation_contribution_rows(np.ones(3), np.ones(3), np.ones(3))


def test_mmc_hand_case():
    # meta [0.1, 0.2, 0.3, 0.4] -> ranks 1..4 -> m = [-Q125, -Q375, Q375, Q125]
    # predictions [4, 1, 3, 2] -> g = [Q125, -Q125, Q375, -Q375]
    # g.m = -Q125^2 + Q125 Q375 + Q375^2 - Q375 Q125 = Q375^2 - Q125^2 = -1.2217727
    # m.m = 2 (Q125^2 + Q375^2) = 2.8496695
    # target [0, 1, 0, 1] lies in [0, 1] -> x4 -> [0, 4, 0, 4] -> centred [-2, 2, -2, 2]
    # t.g = -2 Q125 - 2 Q125 - 2 Q375 - 2 Q375 = -4 (Q125 + Q375) = -5.8759550
    # t.m = 2 Q125 - 2 Q375 - 2 Q375 + 2 Q125 = 4 (Q125 - Q375) = 3.3268401
    # MMC = (t.g - (g.m / m.m) t.m) / 4
    #     = (-5.8759550 + 0.4287419 * 3.3268401) / 4 = -1.1123998
    gm = Q375**2 - Q125**2
    mm = 2 * (Q125**2 + Q375**2)
    tg = -4 * (Q125 + Q375)
    tm = 4 * (Q125 - Q375)
    expected = (tg - gm / mm * tm) / 4
    assert expected == pytest.approx(-1.11239982788009, abs=1e-12)
    got = correlation_contribution(
        np.array([4.0, 1.0, 3.0, 2.0]),
        np.array([0.1, 0.2, 0.3, 0.4]),
        np.array([0.0, 1.0, 0.0, 1.0]),
    )
    assert got == pytest.approx(expected, abs=1e-12)


def test_mmc_target_scaling_rule():
    # Only a target lying in [0, 1] is multiplied by 4 (numerai-tools). The target
    # [-0.5, 0.5, -0.5, 0.5] has the same centred shape as [0, 1, 0, 1] but a
    # negative entry, so it is not scaled: its MMC is 1/4 of the [0, 1] target's.
    p = np.array([4.0, 1.0, 3.0, 2.0])
    meta = np.array([0.1, 0.2, 0.3, 0.4])
    in_unit = correlation_contribution(p, meta, np.array([0.0, 1.0, 0.0, 1.0]))
    outside = correlation_contribution(p, meta, np.array([-0.5, 0.5, -0.5, 0.5]))
    assert outside == pytest.approx(in_unit / 4, abs=1e-12)
    # A target already in buckets -2..2 equals the scaled [0, 1] target.
    buckets = correlation_contribution(p, meta, np.array([-2.0, 2.0, -2.0, 2.0]))
    assert buckets == pytest.approx(in_unit, abs=1e-12)


def test_mmc_of_meta_model_copy_is_zero():
    rng = np.random.default_rng(3)
    meta = rng.normal(size=500)
    t = rng.normal(size=500)
    assert abs(correlation_contribution(meta, meta, t)) < 1e-12
    # Same ranks, different values: still a copy after gaussianization.
    assert abs(correlation_contribution(np.exp(meta), meta, t)) < 1e-12
    P = np.vstack([meta, rng.normal(size=500), 3 * meta + 1])
    got = correlation_contribution_rows(P, meta, t)
    assert abs(got[0]) < 1e-12 and abs(got[2]) < 1e-12
    assert abs(got[1]) > 1e-6


def test_mmc_degenerate_inputs_give_zero():
    meta = np.array([0.1, 0.2, 0.3])
    assert correlation_contribution(np.array([5.0, 5.0, 5.0]), meta, np.array([0, 1, 2.0])) == 0
    assert correlation_contribution(np.array([1.0, 2.0, 3.0]), meta, np.full(3, 0.7)) == 0
    assert correlation_contribution(np.array([1.0]), np.array([1.0]), np.array([1.0])) == 0


def test_mmc_constant_meta_model_removes_nothing():
    # gauss(constant) = 0, so there is no direction to remove and MMC = t.g / A.
    # p = [1, 2, 3] -> g = [-q, 0, q], q = norm.ppf(5/6); target [0, 1, 3] is not
    # in [0, 1] -> centred [-4/3, -1/3, 5/3] -> t.g = q (5/3 + 4/3) = 3 q -> MMC = q.
    q = norm.ppf(5 / 6)
    got = correlation_contribution(np.array([1.0, 2.0, 3.0]), np.ones(3), np.array([0, 1, 3.0]))
    assert got == pytest.approx(q, abs=1e-12)


def _reference_corr(p, t):
    """numerai-tools' numerai_corr steps, one submission, in pandas."""
    t = pd.Series(t) - np.mean(t)
    ranked = (pd.Series(p).rank(method="average") - 0.5) / len(p)
    g = pd.Series(norm.ppf(ranked))
    return pd.Series(np.sign(g) * np.abs(g) ** 1.5).corr(np.sign(t) * np.abs(t) ** 1.5)


def _reference_mmc(p, m, t):
    """numerai-tools' correlation_contribution steps, one submission, in pandas."""
    g = norm.ppf((pd.Series(p).rank(method="average") - 0.5) / len(p))
    mg = norm.ppf((pd.Series(m).rank(method="average") - 0.5) / len(m))
    neutral = g - mg * (g @ mg) / (mg @ mg)
    t = np.asarray(t, dtype=float)
    if (t >= 0).all() and (t <= 1).all():
        t = t * 4
    t = t - t.mean()
    return (t @ neutral) / len(t)


@pytest.mark.parametrize("unit_target", [False, True])
def test_rows_equal_one_dimensional_and_reference(unit_target):
    rng = np.random.default_rng(11)
    n, A = 40, 60
    P = rng.normal(size=(n, A))
    P[5] = np.round(P[5])  # ties
    P[9] = 2.0  # constant row
    meta = rng.normal(size=A)
    t = rng.integers(0, 5, size=A) / 4 if unit_target else rng.normal(size=A)
    corr = numerai_corr_rows(P, t)
    mmc = correlation_contribution_rows(P, meta, t)
    assert corr.shape == (n,) and mmc.shape == (n,)
    for i in range(n):
        assert corr[i] == pytest.approx(numerai_corr(P[i], t), abs=1e-12)
        assert mmc[i] == pytest.approx(correlation_contribution(P[i], meta, t), abs=1e-12)
        if i != 9:
            assert corr[i] == pytest.approx(_reference_corr(P[i], t), abs=1e-10)
            assert mmc[i] == pytest.approx(_reference_mmc(P[i], meta, t), abs=1e-10)
    assert corr[9] == 0.0 and mmc[9] == 0.0
