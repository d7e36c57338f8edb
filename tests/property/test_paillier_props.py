"""Property tests of Paillier: homomorphism, CRT = textbook decryption, packing round
trips and exact linear combinations within the headroom rule (refused beyond it)."""

from __future__ import annotations

import math
from functools import cache

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mechanisms.privacy import paillier as P


@cache
def keys():
    return P.keygen(512, rng=424242)


def centred(m: int, n: int) -> int:
    m %= n
    return m - n if m > (n - 1) // 2 else m


pub0 = keys()[0]
plain = st.integers(-pub0.max_int, pub0.max_int)
small = st.integers(-(2**64), 2**64)
seed = st.integers(0, 2**32 - 1)


@settings(max_examples=100, deadline=None)
@given(plain, plain, seed)
def test_sum_of_ciphertexts_decrypts_to_sum(a, b, s):
    pub, priv = keys()
    rng = np.random.default_rng(s)
    ea, eb = pub.encrypt(a, rng=rng), pub.encrypt(b, rng=rng)
    assert priv.decrypt(ea + eb) == centred(a + b, pub.n)
    assert (ea + eb).c == ea.c * eb.c % pub.nsquare


@settings(max_examples=100, deadline=None)
@given(plain, st.integers(-(2**600), 2**600), seed)
def test_power_of_ciphertext_decrypts_to_product(a, k, s):
    pub, priv = keys()
    ea = pub.encrypt(a, rng=s)
    assert priv.decrypt(ea * k) == centred(k * a, pub.n)
    if k >= 0:
        assert (ea * k).c == pow(ea.c, k % pub.n, pub.nsquare) or k % pub.n > pub.max_int


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**511), seed)
def test_crt_decryption_equals_textbook(m, s):
    pub, priv = keys()
    m %= pub.n
    c = pub.encrypt(centred(m, pub.n), rng=s).c
    n = pub.n
    lam = math.lcm(priv.p - 1, priv.q - 1)
    mu = pow((pow(n + 1, lam, n * n) - 1) // n, -1, n)
    assert priv.raw_decrypt(c) == (pow(c, lam, n * n) - 1) // n * mu % n == m


@settings(max_examples=100, deadline=None)
@given(st.floats(-1e12, 1e12), st.integers(0, 60))
def test_fixed_point_round_trip(x, f):
    pub, priv = keys()
    ct = pub.encrypt_float(x, f, rng=1)
    assert priv.decrypt(ct) == round(x * 2.0**f)
    assert abs(priv.decrypt_float(ct) - x) <= 2.0 ** -(f + 1) * (1 + 1e-12) + abs(x) * 1e-15


@st.composite
def layouts(draw):
    value_bits = draw(st.integers(2, 40))
    headroom = draw(st.integers(0, 12))
    slots = draw(st.integers(1, 500 // (value_bits + headroom)))
    frac = draw(st.integers(0, 8))
    return P.Packing(value_bits, headroom, slots, frac)


def values_for(pk: P.Packing, count: int):
    lim = pk.offset - 1
    return st.lists(st.integers(-lim, lim), min_size=count, max_size=count)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_pack_unpack_round_trip(data):
    pk = data.draw(layouts())
    count = data.draw(st.integers(1, pk.slots))
    vals = data.draw(values_for(pk, count))
    packed = pk.pack(vals)
    assert 0 <= packed < 2 ** (pk.slots * pk.slot_bits)
    assert pk.unpack(packed, count) == vals


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_encrypted_pack_round_trip(data):
    pub, priv = keys()
    pk = data.draw(layouts())
    length = data.draw(st.integers(1, 3 * pk.slots))
    vals = data.draw(values_for(pk, length))  # fixed-point integers
    x = [v / 2**pk.frac_bits for v in vals]  # exact dyadic reals
    v = P.encrypt_vector(pub, x, pk, rng=data.draw(seed))
    assert priv.decrypt_vector_ints(v) == vals
    assert priv.decrypt_vector(v).tolist() == x


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_linear_combination_within_headroom_is_exact(data):
    """Any integer combination with sum |w| <= 2^headroom decrypts slot by slot."""
    pub, priv = keys()
    pk = data.draw(layouts().filter(lambda p: p.headroom_bits >= 1))
    length = data.draw(st.integers(1, 2 * pk.slots))
    nvec = data.draw(st.integers(1, 4))
    vecs = [data.draw(values_for(pk, length)) for _ in range(nvec)]
    budget = pk.max_magnitude
    weights = []
    for _ in range(nvec):
        w = data.draw(st.integers(-budget, budget))
        budget -= abs(w)
        weights.append(w)
    enc = [
        P.encrypt_vector(pub, [x / 2**pk.frac_bits for x in v], pk, rng=i)
        for i, v in enumerate(vecs)
    ]
    total = P.aggregate([e * w for e, w in zip(enc, weights, strict=True)])
    expected = [sum(w * v[i] for w, v in zip(weights, vecs, strict=True)) for i in range(length)]
    assert total.magnitude <= pk.max_magnitude
    assert priv.decrypt_vector_ints(total) == expected


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_combination_beyond_headroom_is_refused(data):
    pub, _ = keys()
    pk = data.draw(layouts().filter(lambda p: p.headroom_bits <= 6))
    v = P.encrypt_vector(pub, [0] * min(3, pk.slots), pk, rng=0)
    k = data.draw(st.integers(pk.max_magnitude + 1, 4 * pk.max_magnitude + 4))
    try:
        v * k
    except OverflowError:
        pass
    else:
        raise AssertionError("overflowing multiplication accepted")
    try:
        P.aggregate([v] * k)
    except OverflowError:
        pass
    else:
        raise AssertionError("overflowing aggregation accepted")


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_headroom_rule_is_tight_for_plaintext_sums(data):
    """Without the rule the slots collide: summing 2^h + 1 copies of the top value
    carries into the next slot, so the guard is not vacuous. (The top slot value is
    (2^h + 1)(2^value_bits - 1), which reaches 2^slot_bits when value_bits > h.)"""
    pk = data.draw(
        layouts().filter(lambda p: p.slots >= 2 and p.headroom_bits < min(p.value_bits, 9))
    )
    top = [pk.offset - 1] * 2
    A = pk.max_magnitude
    assert pk.unpack(A * pk.pack(top), 2, A, A) == [A * top[0]] * 2
    assert pk.unpack((A + 1) * pk.pack(top), 2, A + 1, A + 1) != [(A + 1) * top[0]] * 2


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-100, 100), min_size=1, max_size=6), st.data())
def test_encrypted_dot_matches_numpy(x, data):
    pub, priv = keys()
    w = data.draw(st.lists(st.floats(-100, 100), min_size=len(x), max_size=len(x)))
    enc = [pub.encrypt_float(v, 24, rng=i) for i, v in enumerate(x)]
    out = P.encrypted_dot(enc, w, 24, rng=7)
    xq = np.round(np.array(x) * 2.0**24) / 2.0**24
    wq = np.round(np.array(w) * 2.0**24) / 2.0**24
    assert math.isclose(priv.decrypt_float(out), float(xq @ wq), rel_tol=1e-9, abs_tol=1e-9)


@settings(max_examples=30, deadline=None)
@given(seed)
def test_same_seed_same_ciphertext(s):
    pub, _ = keys()
    assert pub.encrypt(5, rng=s).c == pub.encrypt(5, rng=s).c
    assert pub.encrypt(5, rng=s).c != pub.encrypt(5, rng=s + 1).c
