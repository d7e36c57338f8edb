"""Property tests of two-party MPC over Z_2^64 (mechanisms.privacy.mpc).

* secure results equal numpy's within the fixed-point tolerance, over shapes and values;
* the fast ring product equals Python integers mod 2^64 bit for bit;
* sharing is a homomorphism: shares add and scale like their secrets, exactly;
* a single share is uniform whatever the secret (chi-square on its top bits);
* local truncation lands within one unit in the last place.

Every example draws its own seed, so a failure is reproducible from the example.
Truncating examples keep ``|x| <= 2^40`` at the truncated scale, where a failure
(probability ``|x| / 2^64`` per element) has chance below 2^-24 per element.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats

from mechanisms.privacy import mpc

U64 = np.uint64
seeds = st.integers(0, 2**32 - 1)
dims = st.integers(1, 12)


def floats(shape, bound):
    return hnp.arrays(np.float64, shape, elements=st.floats(-bound, bound, width=64))


@st.composite
def factor_pair(draw, bound=1000.0, max_dim=12):
    m, k, n = (draw(st.integers(1, max_dim)) for _ in range(3))
    return draw(floats((m, k), bound)), draw(floats((k, n), bound))


def matmul_tolerance(x, y):
    """Encoding error of the inputs (half a unit of 2^-16 each), summed over k."""
    k = x.shape[1]
    return k * ((np.abs(x).max() + np.abs(y).max()) * 2.0**-17 + 2.0**-34) + 1e-9


@settings(max_examples=60, deadline=None)
@given(factor_pair(), seeds)
def test_secure_matmul_equals_numpy(pair, seed):
    x, y = pair
    z, costs = mpc.secure_matmul(x, y, np.random.default_rng(seed))
    assert np.all(np.abs(z - x @ y) <= matmul_tolerance(x, y))
    assert costs.rounds == 3


@settings(max_examples=40, deadline=None)
@given(factor_pair(bound=1.0, max_dim=8), seeds)
def test_secure_matmul_with_truncated_product_equals_numpy(pair, seed):
    x, y = pair
    z, _ = mpc.secure_matmul(x, y, np.random.default_rng(seed), truncate_product=True)
    assert np.all(np.abs(z - x @ y) <= matmul_tolerance(x, y) + 2.0**-16)


@settings(max_examples=40, deadline=None)
@given(dims, st.integers(1, 700), dims, seeds)
def test_ring_matmul_equals_python_integers(m, k, n, seed):
    rng = np.random.default_rng(seed)
    a = mpc.random_ring((m, k), rng)
    b = mpc.random_ring((k, n), rng)
    want = ((a.astype(object) @ b.astype(object)) % 2**64).astype(U64)
    assert np.array_equal(mpc.ring_matmul(a, b), want)


@settings(max_examples=60, deadline=None)
@given(floats(7, 1e6), floats(7, 1e6), st.integers(-1000, 1000), seeds)
def test_sharing_is_a_homomorphism(x, y, c, seed):
    rng = np.random.default_rng(seed)
    xs, _ = mpc.share_float(x, rng)
    ys, _ = mpc.share_float(y, rng)
    ex, ey = mpc.encode(x), mpc.encode(y)
    assert np.array_equal(mpc.reveal(mpc.add(xs, ys)[0])[0], ex + ey)
    assert np.array_equal(mpc.reveal(mpc.sub(xs, ys)[0])[0], ex - ey)
    scaled = mpc.Shared(xs.s0 * U64(c % 2**64), xs.s1 * U64(c % 2**64), xs.frac)
    assert np.array_equal(mpc.reveal(scaled)[0], ex * U64(c % 2**64))


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**64 - 1), seeds)
def test_a_single_share_is_uniform_whatever_the_secret(secret, seed):
    sh, _ = mpc.share(np.full(4096, secret, dtype=U64), np.random.default_rng(seed))
    for shares in (sh.s0, sh.s1):
        top = np.bincount((shares >> U64(60)).astype(np.int64), minlength=16)
        assert stats.chisquare(top).pvalue > 1e-6


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.int64, 64, elements=st.integers(-(2**40), 2**40)), seeds)
def test_truncation_is_within_one_unit(x, seed):
    sh, _ = mpc.share(x.view(U64), np.random.default_rng(seed), frac=32)
    t, _ = mpc.truncate(sh, 16)
    got = mpc.reveal(t)[0].view(np.int64)
    assert np.all((got == np.floor(x / 2**16)) | (got == np.ceil(x / 2**16)))
