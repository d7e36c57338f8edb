"""Unit tests of mechanisms.privacy.mpc (two-party additive sharing over Z_2^64).

Oracles: Python integers mod 2^64 for every ring product; numpy float64 for the secure
results, within the fixed-point tolerance; SecureML (Mohassel & Zhang 2017, Sec. 3.1)
for local truncation, whose failure probability is |x| / 2^64 (tested at a rate that
shows up in 2^16 trials); a chi-square test of share uniformity with a deliberately bad
sharing as negative control; the ridge closed form (Hoerl & Kennard 1970) for long
secure training; the cost formulas of the module docstring, counted by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from mechanisms.privacy import mpc

U64 = np.uint64
TWO64 = 2**64


def ring_ref(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b mod 2^64 with Python integers (the slow, obviously right reference)."""
    return ((a.astype(object) @ b.astype(object)) % TWO64).astype(U64)


def byte_pvalue(values: np.ndarray, shift: int = 56) -> float:
    """Chi-square p-value that one byte of uint64 values is uniform over 256 cells."""
    counts = np.bincount(((values >> U64(shift)) & U64(255)).astype(np.int64), minlength=256)
    return float(stats.chisquare(counts).pvalue)


def signed(v) -> np.ndarray:
    return np.asarray(v, dtype=U64).view(np.int64)


# ------------------------------------------------------------- encoding and sharing


def test_encode_decode_hand_computed():
    assert mpc.encode(1.5)[()] == 98304  # 1.5 * 2^16
    assert mpc.encode(-1.0)[()] == TWO64 - 65536  # two's complement
    assert mpc.decode(mpc.encode([-2.25, 0.0, 3.0])).tolist() == [-2.25, 0.0, 3.0]
    assert mpc.decode(mpc.encode(1.0, frac=32), frac=32) == 1.0
    with pytest.raises(ValueError, match="fixed-point range"):
        mpc.encode(2.0**47)  # 2^47 * 2^16 = 2^63
    with pytest.raises(ValueError, match="fixed-point range"):
        mpc.encode([1.0, np.nan])


def test_share_and_reveal_round_trip_with_costs():
    rng = np.random.default_rng(1)
    x = np.array([[1.25, -3.5, 0.0], [7.0, -0.125, 2.0]])
    sh, costs = mpc.share_float(x, rng)
    assert sh.s0.dtype == U64 and sh.shape == (2, 3) and sh.frac == mpc.FRAC_BITS
    assert costs == mpc.Costs(input_bytes=2 * 8 * 6, rounds=1)
    out, c = mpc.reveal_float(sh)
    np.testing.assert_array_equal(out, x)  # exactly representable at 16 bits
    assert c == mpc.Costs(local_ops=6, bytes_per_party=48, rounds=1)


def test_costs_add_in_sequence_and_in_parallel():
    a = mpc.Costs(local_ops=10, bytes_per_party=16, dealer_bytes=48, rounds=1, input_bytes=0)
    b = mpc.Costs(local_ops=5, bytes_per_party=8, dealer_bytes=0, rounds=2, input_bytes=32)
    assert a + b == mpc.Costs(15, 24, 48, 3, 32)
    assert a.parallel(b) == mpc.Costs(15, 24, 48, 2, 32)
    assert sum([a, b, a], mpc.Costs()) == mpc.Costs(25, 40, 96, 4, 32)


def test_linear_operations_are_exact_on_the_ring():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=5), rng.normal(size=5)
    xs, _ = mpc.share_float(x, rng)
    ys, _ = mpc.share_float(y, rng)
    s, c = mpc.add(xs, ys)
    assert c.local_ops == 10 and c.rounds == 0
    assert np.array_equal(mpc.reveal(s)[0], mpc.encode(x) + mpc.encode(y))
    d, _ = mpc.sub(xs, ys)
    assert np.array_equal(mpc.reveal(d)[0], mpc.encode(x) - mpc.encode(y))
    p, c = mpc.add_public(xs, 0.5)
    assert c.local_ops == 5
    assert np.array_equal(mpc.reveal(p)[0], mpc.encode(x) + mpc.encode(0.5))
    with pytest.raises(ValueError, match="scales differ"):
        mpc.add(xs, mpc.Shared(ys.s0, ys.s1, 32))


def test_mul_public_keeps_sixteen_significant_bits():
    rng = np.random.default_rng(3)
    x = rng.uniform(-10, 10, size=200)
    xs, _ = mpc.share_float(x, rng)
    for c in (1e-4, 0.37, -2.5, 3e5, 0.0):
        z, costs = mpc.mul_public(xs, c)
        got = mpc.reveal_float(z)[0]
        # 2^-16 relative error of the factor, |c| times the encoding error of x, and
        # one unit of 2^-16 from the truncation
        tol = np.abs(x * c) * 2.0**-16 + abs(c) * 2.0**-17 + 2.0**-15
        assert np.all(np.abs(got - x * c) <= tol), c
        assert costs.rounds == 0 and costs.bytes_per_party == 0


# --------------------------------------------------------------- exact ring product


@pytest.mark.parametrize(
    "m,k,n", [(1, 1, 1), (3, 5, 4), (7, 9, 1), (7, 9, 2), (6, 40, 3), (4, 1000, 5)]
)
def test_ring_matmul_equals_python_integers(m, k, n):
    rng = np.random.default_rng(m * 1000 + k + n)
    a = mpc.random_ring((m, k), rng)
    b = mpc.random_ring((k, n), rng)
    assert np.array_equal(mpc.ring_matmul(a, b), ring_ref(a, b))


def extreme(d0: int, d1: int, d2: int) -> int:
    """The ring element with balanced limbs d0 (22 bits), d1, d2 (21 bits each)."""
    return (d0 + (d1 << 22) + (d2 << 43)) % TWO64


def test_limbs_reconstruct_and_stay_in_their_ranges():
    rng = np.random.default_rng(4)
    a = np.concatenate(
        [
            mpc.random_ring((1, 500), rng),
            np.array([[0, 1, TWO64 - 1, 2**63, extreme(-(2**21), -(2**20), -(2**20))]], U64),
        ],
        axis=1,
    )
    d0, d2, d1, s01 = mpc._split(a)
    assert d0.min() >= -(2**21) and d0.max() < 2**21
    assert d1.min() >= -(2**20) and d1.max() < 2**20
    assert d2.min() >= -(2**20) and d2.max() < 2**20
    np.testing.assert_array_equal(s01, d0 + d1)
    back = [
        (int(x0) + (int(x1) << 22) + (int(x2) << 43)) % TWO64
        for x0, x1, x2 in zip(d0.ravel(), d1.ravel(), d2.ravel(), strict=True)
    ]
    assert back == [int(v) for v in a.ravel()]
    assert (d0[0, -1], d1[0, -1], d2[0, -1]) == (-(2**21), -(2**20), -(2**20))


@pytest.mark.parametrize("K", [mpc.MAX_INNER, mpc.MAX_INNER + 1, 3 * mpc.MAX_INNER])
def test_ring_matmul_exact_at_the_largest_inner_dimension_with_extreme_limbs(K):
    # Every limb at the end of its range and every product of the same sign: the float
    # sums reach the documented bounds (1.5 * 2^42 * K at offset 43 <= 2^51 at K = 341).
    lo = extreme(-(2**21), -(2**20), -(2**20))
    rng = np.random.default_rng(K)
    a = np.full((3, K), lo, dtype=U64)
    b = np.full((K, 4), lo, dtype=U64)
    b[:, 3] = mpc.random_ring(K, rng)  # one ordinary column too
    assert np.array_equal(mpc.ring_matmul(a, b), ring_ref(a, b))


def test_ring_matmul_in_column_blocks_and_inner_chunks(monkeypatch):
    # Small scratch: columns of the (transposed) product go in blocks of 32, the last one
    # partial, each over three chunks of the inner dimension.
    monkeypatch.setattr(mpc, "_PRODUCT_BLOCK", 40 * 3 * 32)
    rng = np.random.default_rng(19)
    a = mpc.random_ring((100, 2 * mpc.MAX_INNER + 5), rng)
    b = mpc.random_ring((2 * mpc.MAX_INNER + 5, 3), rng)
    assert mpc._work_shape(3, 100) == (5, 3, 32)
    assert np.array_equal(mpc.ring_matmul(a, b), ring_ref(a, b))


def test_limb_bound_is_real(monkeypatch):
    # Without chunking, K = 1024 extreme limbs overflow the exact float conversion: the
    # documented MAX_INNER is a real limit, not decoration.
    lo = extreme(-(2**21), -(2**20), -(2**20))
    a = np.full((3, 1024), lo, dtype=U64)
    b = np.full((1024, 4), lo, dtype=U64)
    monkeypatch.setattr(mpc, "MAX_INNER", 1024)
    assert not np.array_equal(mpc.ring_matmul(a, b), ring_ref(a, b))


# ---------------------------------------------------------------------- truncation


def test_truncation_is_within_one_unit_for_small_values():
    rng = np.random.default_rng(5)
    x = rng.integers(-(2**40), 2**40, size=200_000)  # failure rate <= 2^-24 each
    sh, _ = mpc.share(x.astype(np.int64).view(U64), rng, frac=32)
    t, costs = mpc.truncate(sh, 16)
    assert t.frac == 16 and costs == mpc.Costs(local_ops=4 * x.size)
    got = signed(mpc.reveal(t)[0])
    assert np.all((got == np.floor(x / 2**16)) | (got == np.ceil(x / 2**16)))


@pytest.mark.parametrize("x", [2**60, -(2**60), 3 * 2**58, -(5 * 2**57)])
def test_truncation_fails_at_rate_abs_x_over_2_to_64(x):
    # P(fail) = |x| / 2^64 (1/16 for 2^60), SecureML's bound 2^(l_x + 1 - 64) above it.
    n = 2**16
    rng = np.random.default_rng(abs(x) % 1000 + (x < 0))
    v = np.full(n, x % TWO64, dtype=U64)
    sh, _ = mpc.share(v, rng, frac=32)
    t, _ = mpc.truncate(sh, 16)
    err = signed(mpc.reveal(t)[0] - U64((x >> 16) % TWO64))
    ok = (err == 0) | (err == 1)
    failed = ~ok
    # a failure is off by about 2^(64 - 16) = 2^48, nothing in between
    assert np.all(np.abs(np.abs(err[failed]) - 2**48) <= 1)
    p = float(mpc.truncation_failure_probability(x))
    assert p == abs(x) / 2**64
    l_x = int(np.ceil(np.log2(abs(x) + 1)))
    assert p <= 2.0 ** (l_x + 1 - 64)
    sd = np.sqrt(n * p * (1 - p))
    assert abs(failed.sum() - n * p) < 5 * sd, (failed.sum(), n * p)


def test_truncation_rejects_more_bits_than_the_scale():
    sh, _ = mpc.share_float([1.0], np.random.default_rng(6))
    with pytest.raises(ValueError, match="cannot truncate"):
        mpc.truncate(sh, 17)


# --------------------------------------------------------------------- uniformity


def test_a_single_share_is_uniform_and_a_bad_sharing_is_caught():
    rng = np.random.default_rng(7)
    n = 2**16
    secret = np.full(n, mpc.encode(3.25)[()], dtype=U64)
    sh, _ = mpc.share(secret, rng)
    for shares in (sh.s0, sh.s1):
        for shift in (56, 48, 0):  # top byte, another byte, bottom byte
            assert byte_pvalue(shares, shift) > 1e-6
    # negative control: "shares" that are the secret plus small noise
    bad = secret + rng.integers(0, 2**40, size=n).astype(U64)
    assert byte_pvalue(bad, 56) < 1e-100
    assert byte_pvalue(secret - bad, 56) < 1e-100


def test_mt19937_generators_also_give_uniform_shares():
    rng = np.random.Generator(np.random.MT19937(8))  # 32-bit raw words: must not be used raw
    v = mpc.random_ring(2**15, rng)
    assert byte_pvalue(v, 56) > 1e-6 and byte_pvalue(v, 24) > 1e-6


def test_the_opened_masked_data_is_uniform_even_for_constant_data():
    rng = np.random.default_rng(9)
    xs, _ = mpc.share_float(np.full((256, 128), 1.0), rng)
    ml, costs = mpc.mask_left(xs, rng)
    assert byte_pvalue(ml.e.ravel(), 56) > 1e-6
    assert costs == mpc.Costs(
        local_ops=4 * 256 * 128,
        bytes_per_party=8 * 256 * 128,
        dealer_bytes=16 * 256 * 128,
        rounds=1,
    )


# ------------------------------------------------------------------ Beaver products


def test_elementwise_mul_matches_numpy_with_hand_counted_costs():
    rng = np.random.default_rng(10)
    x, y = rng.uniform(-50, 50, size=(4, 6)), rng.uniform(-50, 50, size=(4, 6))
    xs, _ = mpc.share_float(x, rng)
    ys, _ = mpc.share_float(y, rng)
    z, costs = mpc.mul(xs, ys, rng)
    assert z.frac == 32
    tol = (np.abs(x) + np.abs(y)) * 2.0**-17 + 2.0**-34
    assert np.all(np.abs(mpc.reveal_float(z)[0] - x * y) <= tol)
    assert costs == mpc.Costs(
        local_ops=18 * 24, bytes_per_party=16 * 24, dealer_bytes=48 * 24, rounds=1
    )


def test_matmul_costs_hand_computed():
    rng = np.random.default_rng(11)
    x, _ = mpc.share_float(rng.normal(size=(2, 3)), rng)
    y, _ = mpc.share_float(rng.normal(size=(3, 4)), rng)
    _, costs = mpc.matmul(x, y, rng)
    # m, k, n = 2, 3, 4: 8mkn + 4mk + 5kn + 4mn = 192 + 24 + 60 + 32
    assert costs == mpc.Costs(
        local_ops=308, bytes_per_party=8 * (6 + 12), dealer_bytes=16 * (6 + 12 + 8), rounds=1
    )


@pytest.mark.parametrize("m,k,n", [(1000, 100, 100), (100, 100, 100), (37, 500, 7), (5, 3, 1)])
def test_secure_matmul_matches_numpy(m, k, n):
    rng = np.random.default_rng(m + k + n)
    x, y = rng.normal(size=(m, k)), rng.normal(size=(k, n))
    z, costs = mpc.secure_matmul(x, y, rng)
    tol = k * (np.abs(x).max() + np.abs(y).max()) * 2.0**-17 + 1e-9
    np.testing.assert_allclose(z, x @ y, rtol=0, atol=tol)
    assert costs.rounds == 3  # share, multiply, reveal
    assert costs.input_bytes == 16 * (m * k + k * n)
    assert costs.bytes_per_party == 8 * (m * k + k * n) + 8 * m * n
    assert costs.dealer_bytes == 16 * (m * k + k * n + m * n)


def test_secure_matmul_shapes_truncation_and_range():
    rng = np.random.default_rng(12)
    x, y = rng.normal(size=(6, 4)), rng.normal(size=(4, 3))
    assert mpc.secure_matmul(x[0], y, rng)[0].shape == (3,)
    assert mpc.secure_matmul(x, y[:, 0], rng)[0].shape == (6,)
    assert mpc.secure_matmul(x[0], y[:, 0], rng)[0].shape == ()
    z, costs = mpc.secure_matmul(x, y, rng, truncate_product=True)
    tol = 4 * (np.abs(x).max() + np.abs(y).max()) * 2.0**-17 + 2.0**-16
    np.testing.assert_allclose(z, x @ y, rtol=0, atol=tol)
    assert costs.local_ops == mpc.secure_matmul(x, y, rng)[1].local_ops + 4 * 18
    with pytest.raises(ValueError, match="cannot multiply"):
        mpc.secure_matmul(x, x, rng)
    with pytest.raises(ValueError, match="leave the ring"):
        mpc.secure_matmul(np.full((2, 4), 3e4), np.full((4, 2), 3e4), rng)


def test_a_masked_operand_is_reused_and_transposed_but_masks_are_single_use():
    rng = np.random.default_rng(13)
    x = rng.normal(size=(30, 8))
    xs, _ = mpc.share_float(x, rng)
    ml, _ = mpc.mask_left(xs, rng)
    for cols in (1, 2, 5):
        v = rng.normal(size=(8, cols))
        vs, _ = mpc.share_float(v, rng)
        triple, _ = mpc.right_triple(ml, cols, rng)
        z, _ = mpc.masked_matmul(ml, vs, triple)
        np.testing.assert_allclose(mpc.reveal_float(z)[0], x @ v, atol=1e-3)
        with pytest.raises(ValueError, match="used only once"):
            mpc.masked_matmul(ml, vs, triple)
    r = rng.normal(size=(30, 4))
    rs, _ = mpc.share_float(r, rng)
    mt = ml.T
    z, _ = mpc.masked_matmul(mt, rs, mpc.right_triple(mt, 4, rng)[0])
    np.testing.assert_allclose(mpc.reveal_float(z)[0], x.T @ r, atol=1e-3)
    mask, _ = mpc.left_mask(30, 8, rng)
    mpc.open_left(xs, mask)
    with pytest.raises(ValueError, match="used only once"):
        mpc.open_left(xs, mask)


# ------------------------------------------------------------------------ sigmoid


def test_sigmoid_polynomial_error_is_as_stated():
    u = np.linspace(-mpc.SIGMOID_BOUND, mpc.SIGMOID_BOUND, 200_001)
    err = np.abs(mpc.sigmoid_poly(u) - 1.0 / (1.0 + np.exp(-u)))
    assert err.max() <= mpc.SIGMOID_MAX_ERROR
    assert err.max() > mpc.SIGMOID_MAX_ERROR - 0.001  # the stated number is the real one
    a = mpc.sigmoid_coefficients()
    assert a.shape == (5,)  # degree 9: a1, a3, ..., a9
    assert a[0] == pytest.approx(1.92980258, abs=1e-7)  # Chebyshev interpolant, degree 9
    assert mpc.sigmoid_poly(0.0) == 0.5
    np.testing.assert_allclose(mpc.sigmoid_poly(-u) + mpc.sigmoid_poly(u), 1.0, atol=1e-12)


def test_secure_sigmoid_matches_the_polynomial():
    rng = np.random.default_rng(14)
    u = np.linspace(-8, 8, 801).reshape(-1, 1)
    us, _ = mpc.share_float(u, rng)
    s, costs = mpc.sigmoid(us, rng)
    assert s.frac == mpc.FRAC_BITS and costs.rounds == 5
    got = mpc.reveal_float(s)[0]
    assert np.abs(got - mpc.sigmoid_poly(u)).max() < 1e-3
    assert np.abs(got - 1.0 / (1.0 + np.exp(-u))).max() < mpc.SIGMOID_MAX_ERROR + 1e-3


# ------------------------------------------------------------------ secure training


def regression_data(seed: int, n: int = 300, d: int = 6):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    w = rng.normal(size=d)
    return X, w, rng


def test_secure_ridge_matches_plaintext_gradient_descent():
    X, w, rng = regression_data(15)
    y = X @ w + 0.1 * rng.normal(size=len(X))
    blocks = [X[:, :2], X[:, 2:3], X[:, 3:]]  # three providers
    got, costs = mpc.secure_ridge(blocks, y, 0.1, rng, epochs=60, lr=0.3)
    want = mpc.ridge_gd(X, y, 0.1, epochs=60, lr=0.3)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)  # ~7 units of 2^-16
    n, d = X.shape
    assert costs.input_bytes == 16 * (n * d + n)
    # sharing 1 + masking 1 + 2 per epoch + reveal 1
    assert costs.rounds == 1 + 1 + 2 * 60 + 1
    assert costs.bytes_per_party == 8 * n * d + 60 * 8 * (d + n) + 8 * d


def test_secure_ridge_reaches_the_closed_form():
    X, w, rng = regression_data(16)
    y = X @ w + 0.1 * rng.normal(size=len(X))
    got, _ = mpc.secure_ridge([X[:, :3], X[:, 3:]], y, 0.5, rng, epochs=300, lr=0.5)
    np.testing.assert_allclose(got, mpc.ridge_closed_form(X, y, 0.5), rtol=0, atol=1e-4)


def test_secure_logistic_matches_plaintext_gradient_descent():
    X, w, rng = regression_data(17, n=400)
    X /= 2.0  # keeps |X w| inside the sigmoid's range [-8, 8]
    y = (rng.random(len(X)) < 1.0 / (1.0 + np.exp(-X @ w))).astype(float)
    got, costs = mpc.secure_logistic([X[:, :4], X[:, 4:]], y, 0.01, rng, epochs=80, lr=0.5)
    poly = mpc.logistic_gd(X, y, 0.01, epochs=80, lr=0.5)
    np.testing.assert_allclose(got, poly, rtol=0, atol=1e-3)  # fixed point only
    exact = mpc.logistic_gd(X, y, 0.01, epochs=80, lr=0.5, link=lambda u: 1 / (1 + np.exp(-u)))
    np.testing.assert_allclose(got, exact, rtol=0, atol=0.02)  # plus the approximation
    assert costs.rounds == 1 + 1 + 7 * 80 + 1


def test_training_is_deterministic_per_seed_and_rejects_bad_input():
    X, w, _ = regression_data(18, n=50, d=3)
    y = X @ w
    a, _ = mpc.secure_ridge([X], y, 0.1, np.random.default_rng(1), epochs=5)
    b, _ = mpc.secure_ridge([X], y, 0.1, np.random.default_rng(1), epochs=5)
    np.testing.assert_array_equal(a, b)
    s1, _ = mpc.share_float(X, np.random.default_rng(1))
    s2, _ = mpc.share_float(X, np.random.default_rng(2))
    assert not np.array_equal(s1.s0, s2.s0)
    with pytest.raises(ValueError, match="same number of rows"):
        mpc.secure_ridge([X, X[:10]], y, 0.1, np.random.default_rng(1))
    with pytest.raises(ValueError, match="lr > 0"):
        mpc.secure_logistic([X], y, 0.1, np.random.default_rng(1), lr=0.0)
