"""Unit tests of mechanisms.valuation: hand-computed games, exactness, estimators."""

import numpy as np
import pytest

from mechanisms.scoring import numerai_corr, rank_gaussianize_rows
from mechanisms.valuation import (
    CorrGame,
    LinearGame,
    TabularGame,
    all_coalitions,
    banzhaf,
    exact_banzhaf,
    exact_shapley,
    leave_one_out,
    linear_terms,
    metamodel_game,
    msr_banzhaf,
    shapley,
    tmc_shapley,
)


def table_game(values: dict) -> TabularGame:
    """A TabularGame from {coalition of 1-based players: U}."""
    n = max(max(S, default=0) for S in values)
    table = np.zeros(1 << n)
    for S, v in values.items():
        table[sum(1 << (i - 1) for i in S)] = v
    return TabularGame(table)


# The 3-player game used throughout (players 1, 2, 3):
#   U() = 0, U(1) = 1, U(2) = 2, U(3) = 0, U(12) = 4, U(13) = 1, U(23) = 3, U(123) = 6
THREE = table_game(
    {(): 0, (1,): 1, (2,): 2, (3,): 0, (1, 2): 4, (1, 3): 1, (2, 3): 3, (1, 2, 3): 6}
)


def signal_round(n, A=50, noise=3.0, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.normal(size=A)
    P = t[None] + noise * rng.normal(size=(n, A))
    w = rng.random(n) + 0.1
    return P, w, t


# --- hand-computed games -----------------------------------------------------------


def test_exact_shapley_three_player_game():
    # Shapley weights for n = 3: |S| = 0 -> 1/3, |S| = 1 -> 1/6, |S| = 2 -> 1/3.
    # phi_1 = 1/3 (U1 - U0) + 1/6 (U12 - U2) + 1/6 (U13 - U3) + 1/3 (U123 - U23)
    #       = 1/3 * 1 + 1/6 * 2 + 1/6 * 1 + 1/3 * 3 = 11/6
    # phi_2 = 1/3 * 2 + 1/6 * 3 + 1/6 * 3 + 1/3 * 5 = 20/6
    # phi_3 = 1/3 * 0 + 1/6 * 0 + 1/6 * 1 + 1/3 * 2 = 5/6          (sum 36/6 = 6 = U123)
    np.testing.assert_allclose(exact_shapley(THREE), [11 / 6, 20 / 6, 5 / 6], rtol=1e-12)


def test_exact_banzhaf_three_player_game():
    # phi_i = (sum of the 4 marginal gains of i) / 2^(3-1)
    # phi_1 = (1 + 2 + 1 + 3) / 4 = 7/4; phi_2 = (2 + 3 + 3 + 5) / 4 = 13/4;
    # phi_3 = (0 + 0 + 1 + 2) / 4 = 3/4      (sum 23/4 != 6: Banzhaf is not efficient)
    np.testing.assert_allclose(exact_banzhaf(THREE), [7 / 4, 13 / 4, 3 / 4], rtol=1e-12)


def test_leave_one_out_three_player_game():
    # phi_1 = U123 - U23 = 6 - 3 = 3; phi_2 = 6 - U13 = 5; phi_3 = 6 - U12 = 2
    np.testing.assert_allclose(leave_one_out(THREE), [3.0, 5.0, 2.0])


def test_glove_game_textbook_value():
    # Glove game: player 1 owns a left glove, players 2 and 3 a right glove each; a
    # coalition is worth the number of pairs it can form. Textbook Shapley values:
    # 2/3 for the scarce left glove, 1/6 for each right glove (e.g. Maschler, Solan &
    # Zamir, "Game Theory", the glove market example).
    glove = table_game(
        {(): 0, (1,): 0, (2,): 0, (3,): 0, (1, 2): 1, (1, 3): 1, (2, 3): 0, (1, 2, 3): 1}
    )
    np.testing.assert_allclose(exact_shapley(glove), [2 / 3, 1 / 6, 1 / 6], rtol=1e-12)
    # Banzhaf: player 1 gains in {2}, {3}, {2,3}: 3/4; player 2 only in {1}: 1/4
    np.testing.assert_allclose(exact_banzhaf(glove), [3 / 4, 1 / 4, 1 / 4], rtol=1e-12)


def test_all_coalitions_bit_order():
    m = all_coalitions(2)
    assert m.tolist() == [[False, False], [True, False], [False, True], [True, True]]
    with pytest.raises(ValueError):
        all_coalitions(21)


# --- the metamodel game ------------------------------------------------------------


def test_corr_game_matches_its_definition():
    P, w, t = signal_round(5, A=30, seed=1)
    w[1] = 0.0
    G = rank_gaussianize_rows(P)
    game = metamodel_game(P, w, t)
    masks = all_coalitions(5)
    got = game.values(masks)[0]
    for mask, u in zip(masks, got, strict=True):
        if not mask.any():
            assert u == 0.0
            continue
        ws = w[mask]
        expected = numerai_corr(ws @ G[mask] / ws.sum(), t) if ws.sum() > 0 else 0.0
        assert u == pytest.approx(expected, abs=1e-12)
    # the zero-weight submission alone moves no metamodel: U = 0
    assert got[0b00010] == 0.0


def test_zero_weight_submission_is_a_null_player():
    # a submission without weight does not change the metamodel, so Shapley, Banzhaf
    # and leave-one-out all value it 0, however good its predictions
    from mechanisms.valuation import exact_banzhaf, exact_shapley, leave_one_out

    P, w, t = signal_round(5, A=30, seed=3)
    P[2] = t  # a perfect prediction...
    w[2] = 0.0  # ...that nobody weights
    game = metamodel_game(P, w, t)
    assert exact_shapley(game)[2] == pytest.approx(0.0, abs=1e-12)
    assert exact_banzhaf(game)[2] == pytest.approx(0.0, abs=1e-12)
    assert leave_one_out(game)[2] == pytest.approx(0.0, abs=1e-12)


def test_game_with_no_weight_falls_back_to_equal_weights():
    P, w, t = signal_round(3, A=30, seed=4)
    game = metamodel_game(P, np.zeros(3), t)
    G = rank_gaussianize_rows(P)
    full = game.values(np.ones((1, 3), bool))[0, 0]
    assert full == pytest.approx(numerai_corr(G.mean(axis=0), t), abs=1e-12)


def test_corr_game_pair_values_and_walk_agree_with_values():
    P, w, t = signal_round(6, seed=2)
    w[0] = 0.0  # exercises the equal-weight fallback
    game = metamodel_game(P, w, t)
    masks = all_coalitions(6)
    full = game.values(masks)[0]
    rows = np.zeros(len(masks), dtype=np.intp)
    np.testing.assert_allclose(game.pair_values(rows, masks), full, atol=1e-12)
    perm = np.array([[3, 0, 5, 1, 4, 2]])
    walked, _ = game.walk(game.start(np.zeros(1, np.intp)), np.zeros(1, np.intp), perm)
    idx = np.cumsum([1 << i for i in perm[0]])
    np.testing.assert_allclose(walked[0], full[idx], atol=1e-12)


def test_efficiency_symmetry_and_null_player():
    P, w, t = signal_round(6, seed=3)
    P[2] = P[4]  # 2 and 4 identical with equal weights: symmetric players
    w[2] = w[4]
    P[5] = 7.0  # a constant prediction gaussianizes to 0: a null player
    game = metamodel_game(P, w, t)
    full = game.values(np.ones((1, 6), bool))[0, 0]
    phi = exact_shapley(game)
    assert phi.sum() == pytest.approx(full, abs=1e-12)  # efficiency
    assert phi[2] == pytest.approx(phi[4], abs=1e-12)  # symmetry
    assert phi[5] == pytest.approx(0.0, abs=1e-12)  # null player
    bz = exact_banzhaf(game)
    assert bz[2] == pytest.approx(bz[4], abs=1e-12) and bz[5] == pytest.approx(0.0, abs=1e-12)
    assert leave_one_out(game)[5] == pytest.approx(0.0, abs=1e-12)


def test_two_submissions_shapley_by_hand():
    # n = 2: phi_1 = (U(1) - U()) / 2 + (U(12) - U(2)) / 2, with U(i) = CORR_i
    P, w, t = signal_round(2, seed=4)
    G = rank_gaussianize_rows(P)
    c1, c2 = numerai_corr(P[0], t), numerai_corr(P[1], t)
    u12 = numerai_corr(w @ G / w.sum(), t)
    phi = exact_shapley(metamodel_game(P, w, t))
    np.testing.assert_allclose(phi, [(c1 + u12 - c2) / 2, (c2 + u12 - c1) / 2], atol=1e-12)
    np.testing.assert_allclose(leave_one_out(metamodel_game(P, w, t)), [u12 - c2, u12 - c1])


# --- the linear utility ------------------------------------------------------------


def test_linear_closed_form_equals_enumeration():
    P, w, t = signal_round(7, seed=5)
    game = metamodel_game(P, w, t, utility="linear")
    assert isinstance(game, LinearGame)
    terms = game.terms[0]
    # the game's values by enumeration equal its closed form for all three rules
    np.testing.assert_allclose(exact_shapley(game), terms, atol=1e-14)
    np.testing.assert_allclose(exact_banzhaf(game), terms, atol=1e-14)
    masks = np.vstack([np.ones((1, 7), bool), ~np.eye(7, dtype=bool)])
    vals = game.values(masks)[0]
    np.testing.assert_allclose(vals[0] - vals[1:], terms, atol=1e-14)  # LOO by definition
    rng = np.random.default_rng(0)
    np.testing.assert_allclose(shapley(game, rng, exact_max=0), terms)
    np.testing.assert_allclose(banzhaf(game, rng, exact_max=0), terms)
    # the sum is the linear score of the metamodel: (sum_i w_i g_i / sum w) . t_c / A
    G = rank_gaussianize_rows(P)
    meta = w @ G / w.sum()
    assert terms.sum() == pytest.approx(meta @ (t - t.mean()) / len(t), abs=1e-14)


def test_linear_terms_by_hand():
    # A = 4: ranks 1..4 -> ppf(0.125), ppf(0.375), ppf(0.625), ppf(0.875)
    #      = -1.150349, -0.318639, 0.318639, 1.150349
    # target 0, 1, 2, 3 -> t_c = -1.5, -0.5, 0.5, 1.5
    # g . t_c for an increasing prediction = 2 * (1.5 * 1.150349 + 0.5 * 0.318639) = 3.769686
    # a_1 = 0.5 * 3.769686 / 4 = 0.471211; the reversed prediction gets -0.471211
    P = np.array([[1.0, 2, 3, 4], [4.0, 3, 2, 1]])
    terms = linear_terms(rank_gaussianize_rows(P), np.array([1.0, 1.0]), np.arange(4.0))
    np.testing.assert_allclose(terms, [0.471211, -0.471211], atol=1e-6)
    # weights summing to 0 count as equal
    np.testing.assert_allclose(
        linear_terms(rank_gaussianize_rows(P), np.zeros(2), np.arange(4.0)), terms
    )


# --- Monte Carlo -------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_tmc_without_truncation_is_within_sampling_error_of_exact(seed):
    P, w, t = signal_round(8, seed=10 + seed)
    game = metamodel_game(P, w, t)
    exact = exact_shapley(game)
    est, se = tmc_shapley(game, np.random.default_rng(seed), 3000, 0.0, return_stderr=True)
    assert np.all(np.abs(est - exact) <= 5 * se + 1e-12)
    assert est.sum() == pytest.approx(exact.sum(), abs=1e-12)  # exactly efficient


@pytest.mark.parametrize("tolerance", [0.01, 0.05])
def test_tmc_with_truncation_is_within_tolerance_of_exact(tolerance):
    # Truncation moves at most tolerance * |U(N)| per permutation onto the players not
    # reached; the stated error is that bias plus 5 standard errors.
    P, w, t = signal_round(8, noise=2.0, seed=20)
    game = metamodel_game(P, w, t)
    exact = exact_shapley(game)
    full = exact.sum()
    est, se = tmc_shapley(game, np.random.default_rng(3), 3000, tolerance, return_stderr=True)
    assert np.all(np.abs(est - exact) <= 5 * se + tolerance * abs(full))
    assert est.sum() == pytest.approx(full, abs=1e-12)  # still exactly efficient


def test_tmc_residual_rule_by_hand():
    # U(1) = 0.9, U(2) = 0, U(12) = 1, tolerance 0.2.
    # order (1, 2): v1 = 0.9 and |1 - 0.9| < 0.2 * 1 -> truncated; player 1 gets 0.9 and
    #               the residual 0.1 goes to player 2 (Ghorbani & Zou would give 0).
    # order (2, 1): v1 = 0 -> not truncated; player 2 gets 0, player 1 gets 1.
    # With f the share of orders starting with 1: phi_2 = 0.1 f, phi_1 = 1 - 0.1 f.
    game = table_game({(): 0, (1,): 0.9, (2,): 0.0, (1, 2): 1.0})
    P = 400
    phi = tmc_shapley(game, np.random.default_rng(5), P, 0.2)
    f = phi[1] / 0.1
    assert f * P == pytest.approx(round(f * P), abs=1e-9)  # a whole number of orders
    assert 0.3 < f < 0.7
    assert phi[0] == pytest.approx(1 - 0.1 * f, abs=1e-12)


def test_tmc_on_a_table_game_and_batches():
    est, se = tmc_shapley(THREE, np.random.default_rng(1), 4000, 0.0, return_stderr=True)
    exact = np.array([11 / 6, 20 / 6, 5 / 6])
    assert np.all(np.abs(est - exact) <= 5 * se)
    assert est.sum() == pytest.approx(6.0, abs=1e-12)
    # a batch of games: (B, n) values, each within error of its own exact values
    Ps = [signal_round(5, seed=30 + b) for b in range(3)]
    X = np.stack([rank_gaussianize_rows(P) for P, _, _ in Ps])
    W = np.stack([w for _, w, _ in Ps])
    t = Ps[0][2]
    game = CorrGame(X, t, W)
    exact = exact_shapley(game)
    assert exact.shape == (3, 5)
    for b in range(3):
        single = CorrGame(X[b], t, W[b])
        np.testing.assert_allclose(exact[b], exact_shapley(single), atol=1e-12)
    est, se = tmc_shapley(game, np.random.default_rng(2), 3000, 0.0, return_stderr=True)
    assert est.shape == (3, 5)
    assert np.all(np.abs(est - exact) <= 5 * se + 1e-12)


def test_tmc_is_deterministic_given_the_generator():
    P, w, t = signal_round(12, seed=6)
    game = metamodel_game(P, w, t)
    a = tmc_shapley(game, np.random.default_rng(7), 50, 0.01)
    b = tmc_shapley(game, np.random.default_rng(7), 50, 0.01)
    c = tmc_shapley(game, np.random.default_rng(8), 50, 0.01)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_msr_banzhaf_is_close_to_exact():
    for game in (THREE, metamodel_game(*signal_round(6, seed=40))):
        exact = exact_banzhaf(game)
        est, se = msr_banzhaf(game, np.random.default_rng(0), 40_000, return_stderr=True)
        assert np.all(np.abs(est - exact) <= 5 * se)
    # a player never sampled out (or in) gets 0: with one sample every player is
    # either always in or always out
    assert np.all(msr_banzhaf(THREE, np.random.default_rng(0), 1) == 0.0)


def test_dispatch_uses_exact_up_to_exact_max():
    P, w, t = signal_round(6, seed=41)
    game = metamodel_game(P, w, t)
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(shapley(game, rng, exact_max=6), exact_shapley(game))
    np.testing.assert_array_equal(banzhaf(game, rng, exact_max=6), exact_banzhaf(game))
    mc = shapley(game, np.random.default_rng(1), exact_max=5, permutations=30)
    assert not np.array_equal(mc, exact_shapley(game))
    assert mc.sum() == pytest.approx(exact_shapley(game).sum(), abs=1e-12)


def test_bad_arguments_are_rejected():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError):
        tmc_shapley(THREE, rng, 0)
    with pytest.raises(ValueError):
        tmc_shapley(THREE, rng, 10, tolerance=1.0)
    with pytest.raises(ValueError):
        msr_banzhaf(THREE, rng, 0)
    with pytest.raises(ValueError):
        TabularGame(np.zeros(6))
    with pytest.raises(ValueError):
        metamodel_game(np.zeros((2, 3)), np.ones(2), np.arange(3.0), utility="mse")


def test_empty_game():
    game = CorrGame(np.zeros((0, 4)), np.arange(4.0))
    rng = np.random.default_rng(0)
    assert exact_shapley(game).shape == (0,)
    assert tmc_shapley(game, rng, 5).shape == (0,)
    assert leave_one_out(game).shape == (0,)
