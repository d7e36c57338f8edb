"""Unit tests of mechanisms.privacy.he (ridge training and scoring under Paillier).

Oracles: plaintext gradient descent, ``mpc.ridge_gd`` (Hoerl & Kennard 1970), within the
fixed-point bound derived in the module docstring (recomputed here from the reference
trajectory); the protocol of Hardy et al. (arXiv:1711.10677) counted by hand for one
tiny case; the shapes-only cost model against the measured counts, field by field.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mechanisms.privacy import he, mpc
from mechanisms.privacy import paillier as P

LAM, LR = 0.05, 0.2


@cache
def keys256(backend: str | None = None):
    return P.keygen(256, rng=20250101, backend=backend)


def make_data(seed: int, n: int, dims: list[int], noise: float = 0.1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, sum(dims)))
    y = X @ rng.normal(size=sum(dims)) + noise * rng.normal(size=n)
    blocks = np.split(X, np.cumsum(dims)[:-1], axis=1)
    return X, y, blocks


def fixed_point_bound(X, y, lam, lr, epochs, providers, frac) -> float:
    """``lr sqrt(d) 2^-(f+1) sum_t (P Xh + R_t)`` (he module docstring, "Accuracy").

    Requires ``||A||_2 <= 1`` for ``A = (1 - lr lam) I - (lr / n) X'X`` (asserted).
    ``R_t`` is taken on the reference trajectory; the 1% slack covers its difference
    from the protocol's (which is of the order of the bound itself) and float64 rounding.
    """
    n, d = X.shape
    A = (1.0 - lr * lam) * np.eye(d) - (lr / n) * X.T @ X
    assert np.linalg.norm(A, 2) <= 1.0
    xh = np.abs(np.round(np.ldexp(X, frac))).max() / 2.0**frac
    w, total = np.zeros(d), 0.0
    for _ in range(epochs):
        r = X @ w - y
        total += providers * xh + np.abs(r).max()
        w = w * (1.0 - lr * lam) - (lr / n) * (X.T @ r)
    return 1.01 * lr * np.sqrt(d) * 2.0 ** -(frac + 1) * total + 1e-12


class RecordingKey(P.PrivateKey):
    """D's private key, recording every plaintext D decrypts (D's view of the run)."""

    def __init__(self, priv: P.PrivateKey):
        super().__init__(priv.public_key, priv.p, priv.q)
        self.seen: list[int] = []

    def decrypt(self, ct):
        m = super().decrypt(ct)
        self.seen.append(m)
        return m


# ------------------------------------------------------------------ accuracy


@pytest.mark.parametrize("dims", [[3], [2, 2], [1, 2, 2]])
@pytest.mark.parametrize("frac", [8, 24])
def test_weights_match_ridge_gd_within_the_fixed_point_bound(dims, frac):
    X, y, blocks = make_data(1, 12, dims)
    epochs = 6
    w, _ = he.secure_ridge_he(
        blocks, y, LAM, np.random.default_rng(2), epochs=epochs, lr=LR, frac=frac, keys=keys256()
    )
    ref = mpc.ridge_gd(X, y, LAM, epochs=epochs, lr=LR)
    if len(dims) == 1:  # the lone provider trains in plaintext
        np.testing.assert_array_equal(w, ref)
        return
    err = np.linalg.norm(w - ref)
    bound = fixed_point_bound(X, y, LAM, LR, epochs, len(dims), frac)
    assert 0 < err <= bound  # (the worst-case bound is ~50x the error seen here)


def test_long_run_approaches_the_closed_form():
    X, y, blocks = make_data(3, 10, [2, 1])
    w, _ = he.secure_ridge_he(
        blocks, y, 0.1, np.random.default_rng(0), epochs=150, lr=0.5, keys=keys256()
    )
    np.testing.assert_allclose(w, mpc.ridge_closed_form(X, y, 0.1), atol=1e-6)


def test_scores_match_plaintext_within_the_bound():
    X, y, blocks = make_data(4, 7, [2, 1, 2])
    w = np.array([0.5, -1.25, 3.0, 0.0, -0.1])
    for parts in (blocks, [X]):
        yhat, costs = he.secure_predict_he(parts, w, np.random.default_rng(1), keys=keys256())
        bound = X.shape[1] * 2.0**-25 * (np.abs(X).max() + np.abs(w).max())
        assert np.abs(yhat - X @ w).max() <= bound
        dims = [b.shape[1] for b in parts]
        assert costs == he.he_inference_costs(7, dims, key_bits=256)


# ------------------------------------------------------------------ costs


def test_costs_counted_by_hand():
    """n = 3 rows, one column at each of two providers, one epoch, a 256-bit key.

    C = 2 * 256 / 8 = 64 bytes; B = bits(2) + 10 + 16 + 48 = 76, M = ceil(119 / 8) = 15.
    Round 1: provider 2 encrypts 3 values (192 bytes). Round 2: provider 1 adds its
    plaintext to each (3 additions) and sends Enc(r) (192 bytes). Round 3: per column
    3 exponentiations of 24 + 10 bits, 3 + 1 accumulating products, 1 inversion, a
    mask encrypted and added (1 encryption, 1 addition); 64 bytes each. Round 4: D
    decrypts 2 and returns 2 * 15 bytes. Final: 8 bytes each.
    """
    _, y, blocks = make_data(5, 3, [1, 1])
    _, costs = he.secure_ridge_he(
        blocks, y, LAM, np.random.default_rng(0), epochs=1, keys=keys256()
    )
    expected = he.HeCosts(
        encryptions=5,
        obfuscators=5,
        decryptions=2,
        additions=3 + 2 * (4 + 1),
        exponent_bits=6 * 34,
        exponentiations=6,
        inversions=2,
        bytes_total=192 + 192 + 128 + 30 + 16,
        bytes_critical=192 + 192 + 64 + 30 + 8,
        rounds=5,
    )
    assert costs == expected
    assert he.he_training_costs(3, [1, 1], 1, key_bits=256) == expected


@pytest.mark.parametrize("dims", [[2], [1, 3], [2, 1, 1]])
@pytest.mark.parametrize("epochs", [0, 3])
def test_cost_model_equals_measured_counts(dims, epochs):
    _, y, blocks = make_data(6, 9, dims)
    _, costs = he.secure_ridge_he(
        blocks, y, LAM, np.random.default_rng(0), epochs=epochs, keys=keys256()
    )
    assert costs == he.he_training_costs(9, dims, epochs, key_bits=256)
    assert costs.obfuscators == costs.encryptions  # each encryption used a pooled one


def test_exponent_bits_charge_bounds_the_work_done():
    """Charged: frac + feature_bits per exponent; done: the exponents' bit lengths."""
    X, y, blocks = make_data(7, 10, [2, 2])
    epochs = 2
    _, costs = he.secure_ridge_he(
        blocks, y, LAM, np.random.default_rng(0), epochs=epochs, keys=keys256()
    )
    done = epochs * sum(P.encode_fixed(float(x), 24).__abs__().bit_length() for x in X.ravel())
    assert costs.exponent_bits == costs.exponentiations * 34
    assert 0.5 * costs.exponent_bits < done <= costs.exponent_bits


def test_heccosts_add_and_ciphertext_bytes():
    a = he.HeCosts(encryptions=1, additions=2, rounds=1, bytes_critical=5)
    b = he.HeCosts(encryptions=3, inversions=1, rounds=2, bytes_critical=7)
    assert a + b == he.HeCosts(
        encryptions=4, additions=2, inversions=1, rounds=3, bytes_critical=12
    )
    assert he.ciphertext_bytes(2048) == 512 and he.ciphertext_bytes(1022) == 256
    pub = keys256()[0]
    assert he.ciphertext_bytes(pub.bits) == -(-pub.nsquare.bit_length() // 8)


def test_key_too_small_names_the_bits_needed():
    # n = 10: B = bits(9) + 10 + 16 + 2 * 24 = 78; needed = 78 + 40 + 4 = 122
    assert he.required_key_bits(10) == 122
    _, y, blocks = make_data(8, 10, [1, 1])
    small = P.keygen(120, rng=3)
    with pytest.raises(ValueError, match="needs at least 122 bits"):
        he.secure_ridge_he(blocks, y, LAM, np.random.default_rng(0), epochs=1, keys=small)
    with pytest.raises(ValueError, match="needs at least 122 bits"):
        he.he_training_costs(10, [1, 1], 1, key_bits=120)
    he.he_training_costs(10, [1, 1], 1, key_bits=122)  # exactly enough
    with pytest.raises(ValueError, match="needs at least"):
        he.secure_predict_he(blocks, np.array([1e20, 1.0]), np.random.default_rng(0), keys=small)


# ------------------------------------------------------------------ privacy


def run_recorded(seed: int, blocks, y, epochs=3):
    pub, priv = keys256()
    rec = RecordingKey(priv)
    w, costs = he.secure_ridge_he(
        blocks, y, LAM, np.random.default_rng(seed), epochs=epochs, lr=LR, keys=(pub, rec)
    )
    return w, costs, rec.seen


def test_developer_sees_only_masked_gradients():
    X, y, blocks = make_data(9, 8, [2, 1])
    epochs = 3
    w, costs, seen = run_recorded(0, blocks, y, epochs)
    assert len(seen) == costs.decryptions == epochs * 3  # D decrypts nothing else
    # the true gradients at scale 2^48, from the plaintext trajectory
    window = he.gradient_window_bits(8)
    ref, truth = np.zeros(3), []
    for _ in range(epochs):
        g = X.T @ (X @ ref - y)
        truth.extend(int(v) for v in np.round(np.ldexp(g, 48)))
        ref = ref * (1 - LR * LAM) - (LR / 8) * g
    for v, g in zip(seen, truth, strict=True):
        # v - g is the mask, uniform on [0, 2^(B+41)): at least 2^(B+1) but with
        # probability 2^-40, far from the true gradient
        assert 2 ** (window + 1) < v - g < 2 ** (window + he.STAT_SEC + 1) + 2**window


def test_same_seed_same_run_other_seed_other_masks_same_weights():
    _, y, blocks = make_data(10, 6, [1, 2])
    w1, c1, seen1 = run_recorded(4, blocks, y)
    w2, c2, seen2 = run_recorded(4, blocks, y)
    w3, c3, seen3 = run_recorded(5, blocks, y)
    assert seen1 == seen2 and c1 == c2 == c3
    np.testing.assert_array_equal(w1, w2)
    assert all(a != b for a, b in zip(seen1, seen3, strict=True))
    np.testing.assert_array_equal(w1, w3)  # masks cancel exactly: randomness hides only


# ------------------------------------------------------------------ backends, validation


def test_python_backend_agrees_with_gmpy2():
    pub, priv = keys256("python")
    assert pub.backend is P.PYTHON and type(pub._n) is int
    X, y, blocks = make_data(11, 4, [1, 1])
    w, costs = he.secure_ridge_he(
        blocks, y, LAM, np.random.default_rng(0), epochs=2, keys=(pub, priv)
    )
    w_g, costs_g = he.secure_ridge_he(
        blocks, y, LAM, np.random.default_rng(0), epochs=2, keys=keys256()
    )
    np.testing.assert_array_equal(w, w_g)
    assert costs == costs_g
    yhat, _ = he.secure_predict_he(blocks, w, np.random.default_rng(0), keys=(pub, priv))
    assert np.abs(yhat - X @ w).max() < 1e-6


def test_keys_generated_from_the_rng_when_not_given():
    _, y, blocks = make_data(12, 4, [1, 1])
    w1, c1 = he.secure_ridge_he(blocks, y, LAM, np.random.default_rng(3), epochs=1, key_bits=256)
    w2, c2 = he.secure_ridge_he(blocks, y, LAM, np.random.default_rng(3), epochs=1, key_bits=256)
    np.testing.assert_array_equal(w1, w2)
    assert c1 == c2 == he.he_training_costs(4, [1, 1], 1, key_bits=256)


def test_bad_inputs_are_refused():
    _, y, blocks = make_data(13, 5, [1, 1])
    rng, keys = np.random.default_rng(0), keys256()
    with pytest.raises(ValueError, match="same number of rows"):
        he.secure_ridge_he([blocks[0], blocks[1][:4]], y, LAM, rng, keys=keys)
    with pytest.raises(ValueError, match="y must be"):
        he.secure_ridge_he(blocks, y[:4], LAM, rng, keys=keys)
    with pytest.raises(ValueError, match="non-empty list"):
        he.secure_ridge_he([], y, LAM, rng, keys=keys)
    with pytest.raises(ValueError, match="lr > 0"):
        he.secure_ridge_he(blocks, y, LAM, rng, lr=0.0, keys=keys)
    with pytest.raises(ValueError, match="lam >= 0"):
        he.secure_ridge_he(blocks, y, -1.0, rng, keys=keys)
    with pytest.raises(ValueError, match="raise feature_bits"):
        he.secure_ridge_he([blocks[0] * 2000, blocks[1]], y, LAM, rng, keys=keys)
    with pytest.raises(ValueError, match="raise residual_bits"):
        he.secure_ridge_he(
            blocks, 1000 * y, LAM, rng, epochs=1, keys=keys, residual_bits=0, feature_bits=3
        )
    with pytest.raises(ValueError, match="key_bits=512"):
        he.secure_ridge_he(blocks, y, LAM, rng, key_bits=512, keys=keys)
    with pytest.raises(ValueError, match="does not belong"):
        he.secure_ridge_he(blocks, y, LAM, rng, keys=(keys[0], P.keygen(128, rng=5)[1]))
    with pytest.raises(TypeError, match="Generator"):
        he.secure_ridge_he(blocks, y, LAM, 0, keys=keys)
    with pytest.raises(ValueError, match="frac"):
        he.he_training_costs(5, [1, 1], 1, frac=-1)
    with pytest.raises(ValueError, match="dims"):
        he.he_training_costs(5, [], 1)
    with pytest.raises(ValueError, match="weights"):
        he.secure_predict_he(blocks, np.ones(3), rng, keys=keys)


# ------------------------------------------------------------------ property


@settings(max_examples=15, deadline=None)
@given(
    n=st.integers(1, 6),
    dims=st.lists(st.integers(1, 2), min_size=1, max_size=3),
    epochs=st.integers(0, 2),
    seed=st.integers(0, 2**16),
)
def test_any_small_shape_matches_model_and_reference(n, dims, epochs, seed):
    X, y, blocks = make_data(seed, n, dims)
    w, costs = he.secure_ridge_he(
        blocks, y, LAM, np.random.default_rng(seed), epochs=epochs, lr=LR, keys=keys256()
    )
    assert costs == he.he_training_costs(n, dims, epochs, key_bits=256)
    ref = mpc.ridge_gd(X, y, LAM, epochs=epochs, lr=LR)
    A = (1.0 - LR * LAM) * np.eye(X.shape[1]) - (LR / n) * X.T @ X
    if np.linalg.norm(A, 2) <= 1.0:
        assert np.linalg.norm(w - ref) <= fixed_point_bound(X, y, LAM, LR, epochs, len(dims), 24)
    else:  # lr too large for this draw: the bound does not apply, the error still tiny
        np.testing.assert_allclose(w, ref, rtol=1e-4, atol=1e-4)
