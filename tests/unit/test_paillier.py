"""Unit tests of Paillier (g = n + 1): keys, CRT decryption, fixed point, packing,
randomness pools, encrypted inference and aggregation, backends, python-paillier interop.

Oracles: a hand-sized textbook key (p = 11, q = 13); Paillier's original decryption
``m = L(c^lambda mod n^2) mu mod n`` (Paillier 1999, section 3) against the CRT path;
python-paillier (``phe``) decrypting our ciphertexts and the reverse.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pytest

from mechanisms.privacy import paillier as P


@cache
def key512():
    return P.keygen(512, rng=20240501)


def textbook_decrypt(priv: P.PrivateKey, c: int) -> int:
    """Paillier 1999, section 3: lambda = lcm(p-1, q-1), mu = L(g^lambda mod n^2)^-1."""
    n = priv.public_key.n
    lam = math.lcm(priv.p - 1, priv.q - 1)
    mu = pow((pow(n + 1, lam, n * n) - 1) // n, -1, n)
    return (pow(c, lam, n * n) - 1) // n * mu % n


# --------------------------------------------------------------------------- textbook key


def test_textbook_key_by_hand():
    # n = 11 * 13 = 143, n^2 = 20449; Enc(42) with r = 2: 2^143 mod 20449 = 13670 and
    # c = (1 + 42 * 143) * 13670 mod 20449 = 12955; lambda = lcm(10, 12) = 60, mu = 31.
    pub = P.PublicKey(143)
    priv = P.PrivateKey(pub, 11, 13)
    assert pow(2, 143, 143**2) == 13670
    c = P.Ciphertext(pub, 12955)
    assert priv.decrypt(c) == 42
    assert textbook_decrypt(priv, 12955) == 42
    # Enc(-43) = Enc(100) with r = 5 is 16141; 42 + 100 = 142 = -1 mod 143
    d = P.Ciphertext(pub, 16141)
    assert priv.decrypt(d) == -43
    assert priv.decrypt(c + d) == -1
    assert (c._c * d._c) % 20449 == (c + d).c
    assert priv.decrypt(c * 3) == 126 - 143  # 126 > 71 reads as negative
    assert pub.max_int == 71


def test_private_key_validation():
    pub = P.PublicKey(143)
    with pytest.raises(ValueError, match="p \\* q"):
        P.PrivateKey(pub, 11, 17)
    with pytest.raises(ValueError, match="odd modulus"):
        P.PublicKey(144)
    with pytest.raises(ValueError, match="differ"):
        P.PrivateKey(P.PublicKey(121), 11, 11)


# --------------------------------------------------------------------------- primes, keygen

PRIMES = [2, 3, 5, 1999, 2003, 7919, 2**61 - 1, 2**89 - 1, 2**127 - 1]
COMPOSITES = [
    1,
    4,
    561,  # Carmichael numbers
    1105,
    1729,
    41041,
    825265,
    321197185,
    2047,  # strong pseudoprimes to base 2
    3277,
    4033,
    3215031751,  # strong pseudoprime to bases 2, 3, 5 and 7
    (2**61 - 1) * (2**89 - 1),
    (2**127 - 1) ** 2,
]


@pytest.mark.parametrize("x", PRIMES)
def test_miller_rabin_primes(x):
    assert P.is_probable_prime(x, rng=0)


@pytest.mark.parametrize("x", COMPOSITES)
def test_miller_rabin_composites(x):
    assert not P.is_probable_prime(x, rng=0)


@pytest.mark.parametrize("bits", [32, 64, 256, 512])
def test_keygen_sizes_and_conditions(bits):
    pub, priv = P.keygen(bits, rng=bits)
    p, q = priv.p, priv.q
    assert pub.n == p * q and pub.n.bit_length() == bits
    assert p.bit_length() == q.bit_length() == bits // 2 and p != q
    assert math.gcd(pub.n, (p - 1) * (q - 1)) == 1
    assert P.is_probable_prime(p, rng=1) and P.is_probable_prime(q, rng=1)
    if P.GMPY2 is not None:
        import gmpy2

        assert gmpy2.is_prime(p) and gmpy2.is_prime(q)


def test_keygen_is_deterministic_with_a_seed():
    a = P.keygen(128, rng=7)[1]
    b = P.keygen(128, rng=np.random.default_rng(7))[1]
    c = P.keygen(128, rng=8)[1]
    assert (a.p, a.q) == (b.p, b.q)
    assert (a.p, a.q) != (c.p, c.q)
    s1, s2 = P.keygen(128)[1], P.keygen(128)[1]  # secrets
    assert (s1.p, s1.q) != (s2.p, s2.q)


@pytest.mark.parametrize("bits", [31, 33, 16, 0])
def test_keygen_rejects_bad_sizes(bits):
    with pytest.raises(ValueError, match="even number"):
        P.keygen(bits)


def test_keygen_rejects_bad_rng():
    with pytest.raises(TypeError, match="rng"):
        P.keygen(64, rng=0.5)


# --------------------------------------------------------------------------- encryption


def test_encrypt_decrypt_signed_range_edges():
    pub, priv = key512()
    for m in (0, 1, -1, 123456789, -987654321, pub.max_int, -pub.max_int):
        assert priv.decrypt(pub.encrypt(m)) == m
    for m in (pub.max_int + 1, -pub.max_int - 1):
        with pytest.raises(ValueError, match="signed range"):
            pub.encrypt(m)
    with pytest.raises(TypeError, match="encrypt_float"):
        pub.encrypt(1.5)


def test_crt_matches_textbook_decryption():
    pub, priv = key512()
    rng = np.random.default_rng(3)
    for _ in range(10):
        m = P._randbelow(pub.n, rng)
        c = pub.encrypt(m - pub.n if m > pub.max_int else m, rng=rng)
        assert priv.raw_decrypt(c.c) == textbook_decrypt(priv, c.c) == m


def test_encryption_is_probabilistic_and_seedable():
    pub, _ = key512()
    assert pub.encrypt(5).c != pub.encrypt(5).c
    assert pub.encrypt(5, rng=1).c == pub.encrypt(5, rng=np.random.default_rng(1)).c
    assert pub.encrypt(5, rng=1).c != pub.encrypt(5, rng=2).c


def test_ciphertext_validation_and_key_mixing():
    pub, priv = key512()
    other, _ = P.keygen(512, rng=99)
    for c in (0, pub.nsquare, -3):
        with pytest.raises(ValueError, match="n\\^2"):
            P.Ciphertext(pub, c)
    with pytest.raises(ValueError, match="another public key"):
        priv.decrypt(other.encrypt(1))
    with pytest.raises(ValueError, match="another public key"):
        _ = pub.encrypt(1) + other.encrypt(1)
    ct = P.Ciphertext(pub, pub.encrypt(77).c, frac_bits=0)
    assert priv.decrypt(ct) == 77 and isinstance(ct.c, int)


def test_homomorphic_operators():
    pub, priv = key512()
    a, b = pub.encrypt(1000), pub.encrypt(-37)
    assert priv.decrypt(a + b) == 963
    assert priv.decrypt(a - b) == 1037
    assert priv.decrypt(-a) == -1000
    assert priv.decrypt(a * 12) == 12000
    assert priv.decrypt(12 * a) == 12000
    assert priv.decrypt(b * -5) == 185
    assert priv.decrypt(a * 0) == 0
    assert priv.decrypt(a + 5) == 1005
    assert priv.decrypt(5 - a) == -995
    assert priv.decrypt(a * np.int64(3)) == 3000


# --------------------------------------------------------------------------- fixed point


def test_fixed_point_encoding():
    assert P.encode_fixed(1.5, 4) == 24
    assert P.encode_fixed(-0.75, 2) == -3
    assert P.encode_fixed(3, 8) == 768
    assert P.encode_fixed(0.5 / 16, 4) == 0  # round half to even
    assert P.decode_fixed(-3, 2) == -0.75
    with pytest.raises(ValueError, match="finite"):
        P.encode_fixed(float("nan"), 4)


def test_fixed_point_arithmetic_tracks_scale():
    pub, priv = key512()
    x = pub.encrypt_float(-2.25, 8)
    y = pub.encrypt_float(0.125, 16)
    assert x.frac_bits == 8 and priv.decrypt(x) == -2.25 * 256
    s = x + y  # x is brought up to 16 fractional bits
    assert s.frac_bits == 16 and priv.decrypt_float(s) == -2.125
    p = x.mul(0.5, 4)
    assert p.frac_bits == 12 and priv.decrypt_float(p) == -1.125
    q = x * -1.5  # DEFAULT_FRAC_BITS for float scalars
    assert q.frac_bits == 8 + P.DEFAULT_FRAC_BITS and priv.decrypt_float(q) == 3.375
    assert priv.decrypt_float(x + 0.25) == -2.0
    z = pub.encrypt_float(1 / 3)  # 32 fractional bits: error at most 2^-33
    assert abs(priv.decrypt_float(z) - 1 / 3) <= 2.0**-33


# --------------------------------------------------------------------------- randomness pool


def test_pool_hands_out_each_obfuscator_once():
    pub, priv = key512()
    pool = P.RandomnessPool(pub, 5, rng=1)
    values = list(pool._values)
    assert len(set(values)) == 5
    cts = [pub.encrypt(i, pool=pool) for i in range(7)]
    assert len(pool) == 0 and pool.online == 2
    assert [priv.decrypt(c) for c in cts] == list(range(7))
    assert len({c.c for c in cts}) == 7
    with pytest.raises(ValueError, match="not both"):
        pub.encrypt(1, rng=1, pool=pool)
    with pytest.raises(ValueError, match="another public key"):
        P.keygen(512, rng=5)[0].encrypt(1, pool=pool)
    with pytest.raises(ValueError, match="method"):
        P.RandomnessPool(pub, method="fast")


def test_djn_pool_ciphertexts_decrypt():
    pub, priv = key512()
    pool = P.RandomnessPool(pub, 20, method="djn", rng=2, window=4)
    assert len(set(pool._values)) == 20
    for m in (0, 7, -7, pub.max_int):
        assert priv.decrypt(pub.encrypt(m, pool=pool)) == m
    # the obfuscators are n-th residues: they decrypt to 0
    assert priv.raw_decrypt(pool.take()) == 0


def test_djn_fixed_base_power_matches_powmod():
    pub, _ = key512()
    fb = P._FixedBase(pub._n + 5, 100, pub._nsq, 5, pub.backend)
    for e in (0, 1, 31, 32, 2**100 - 1, 123456789123456789):
        assert fb.pow(e) == pow(pub.n + 5, e, pub.nsquare)


def test_reused_obfuscator_reveals_the_difference():
    # why pools never hand out a value twice: c1 / c2 = 1 + (m1 - m2) n mod n^2
    pub, _ = key512()
    r = pub.obfuscator(rng=3)
    c1 = (1 + 500 * pub.n) * r % pub.nsquare
    c2 = (1 + 123 * pub.n) * r % pub.nsquare
    ratio = c1 * pow(c2, -1, pub.nsquare) % pub.nsquare
    assert (ratio - 1) // pub.n == 377


# --------------------------------------------------------------------------- packing


def test_packing_layout_by_hand():
    pk = P.Packing(value_bits=4, headroom_bits=2, slots=3)
    # offset 8, slots of 6 bits: 9 + (6 << 6) + (11 << 12) = 9 + 384 + 45056
    assert pk.pack([1, -2, 3]) == 45449
    assert pk.unpack(45449, 3) == [1, -2, 3]
    assert pk.slot_bits == 6 and pk.offset == 8 and pk.max_magnitude == 4
    assert pk.encode([7, -7]) == [7, -7]
    with pytest.raises(ValueError, match="index 1"):
        pk.encode([0, -8])
    with pytest.raises(ValueError, match="do not fit"):
        pk.pack([0, 0, 0, 0])


def test_headroom_rule():
    assert P.headroom_for(1) == 0
    assert P.headroom_for(2) == 1
    assert P.headroom_for(4) == 2
    assert P.headroom_for(5) == 3
    assert P.headroom_for(3, max_scalar=5) == 4  # A = 15 <= 16
    with pytest.raises(ValueError):
        P.headroom_for(0)


def test_packing_for_key():
    pub, _ = key512()
    pk = P.Packing.for_key(pub, 16, 6)
    assert pk.slots == (512 - 2) // 22 == 23
    pk.check_key(pub)
    with pytest.raises(ValueError, match="at most 510"):
        P.Packing(16, 6, 24).check_key(pub)
    with pytest.raises(ValueError, match="does not fit"):
        P.Packing.for_key(pub, 500, 20)
    with pytest.raises(ValueError, match="value_bits"):
        P.Packing(0, 1, 1)


def test_packed_round_trip_and_partial_last_chunk():
    pub, priv = key512()
    pk = P.Packing.for_key(pub, 20, 4, frac_bits=6)
    x = np.random.default_rng(0).uniform(-1000, 1000, size=pk.slots * 2 + 5)
    v = P.encrypt_vector(pub, x, pk, rng=1)
    assert len(v.ciphertexts) == 3 and v.chunk_counts() == [pk.slots, pk.slots, 5]
    np.testing.assert_array_equal(priv.decrypt_vector(v), np.round(x * 64) / 64)
    with pytest.raises(ValueError, match="empty"):
        P.encrypt_vector(pub, [], pk)
    with pytest.raises(ValueError, match="outside"):
        P.encrypt_vector(pub, [2.0**14], pk)


def test_packed_arithmetic_signed():
    pub, priv = key512()
    pk = P.Packing.for_key(pub, 12, 4)
    a = [5, -2047, 2047, 0, -1]
    b = [-3, 100, -2047, 9, 1]
    u, v = P.encrypt_vector(pub, a, pk), P.encrypt_vector(pub, b, pk)
    assert priv.decrypt_vector_ints(u + v) == [x + y for x, y in zip(a, b, strict=True)]
    assert priv.decrypt_vector_ints(u - v) == [x - y for x, y in zip(a, b, strict=True)]
    assert priv.decrypt_vector_ints(-u) == [-x for x in a]
    assert priv.decrypt_vector_ints(u * -7) == [-7 * x for x in a]
    w = 3 * u - v * 2 + (-v)
    assert (w.weight, w.magnitude) == (3 - 2 - 1, 6)
    assert priv.decrypt_vector_ints(w) == [3 * x - 3 * y for x, y in zip(a, b, strict=True)]
    s = u.scale(0.75, 2)  # times 3, two more fractional bits
    assert s.frac_bits == 2 and priv.decrypt_vector(s).tolist() == [0.75 * x for x in a]
    with pytest.raises(TypeError, match="scale"):
        _ = u * 0.5


def test_packed_headroom_overflow_is_refused():
    pub, priv = key512()
    pk = P.Packing.for_key(pub, 8, 2)  # A <= 4
    top = [127] * 5
    u = P.encrypt_vector(pub, top, pk)
    s4 = P.aggregate([u, u, u, u])  # 4 * 127 + 4 * 128 = 1020 < 2^10: exact
    assert priv.decrypt_vector_ints(s4) == [508] * 5
    assert priv.decrypt_vector_ints(u * -4) == [-508] * 5
    with pytest.raises(OverflowError, match="headroom_bits >= 3"):
        P.aggregate([u] * 5)
    with pytest.raises(OverflowError, match="headroom"):
        _ = s4 + u
    with pytest.raises(OverflowError, match="headroom"):
        _ = u * 5
    with pytest.raises(OverflowError, match="headroom"):
        u.scale(1.25, 2)  # times 5


def test_packed_vectors_must_match():
    pub, _ = key512()
    pk = P.Packing.for_key(pub, 12, 4)
    u = P.encrypt_vector(pub, [1, 2, 3], pk)
    with pytest.raises(ValueError, match="length"):
        _ = u + P.encrypt_vector(pub, [1, 2], pk)
    with pytest.raises(ValueError, match="packing"):
        _ = u + P.encrypt_vector(pub, [1, 2, 3], P.Packing.for_key(pub, 12, 5))
    with pytest.raises(ValueError, match="frac_bits"):
        _ = u + u.scale(1.0, 1)
    with pytest.raises(ValueError, match="different public keys"):
        other = P.keygen(512, rng=5)[0]
        _ = u + P.encrypt_vector(other, [1, 2, 3], pk)


# --------------------------------------------------------------------------- applications


def test_encrypted_dot_single_vector():
    pub, priv = key512()
    rng = np.random.default_rng(4)
    x, w = rng.normal(size=8), rng.normal(size=8)
    enc = [pub.encrypt_float(v, 20) for v in x]
    out = P.encrypted_dot(enc, w, 20, bias=-0.5)
    assert out.frac_bits == 40
    # quantization: features to 2^-21, weights to 2^-21 each
    bound = (np.abs(w).sum() + np.abs(x).sum() + 1) * 2.0**-21
    assert abs(priv.decrypt_float(out) - (x @ w - 0.5)) <= bound
    plain = P.encrypted_dot(enc, w, 20, bias=-0.5, rerandomize=False)
    assert plain.c != out.c and priv.decrypt(plain) == priv.decrypt(out)
    with pytest.raises(ValueError, match="one weight per feature"):
        P.encrypted_dot(enc, w[:3])
    with pytest.raises(ValueError, match="frac_bits"):
        P.encrypted_dot([*enc[:7], pub.encrypt_float(1.0, 4)], w)


def test_encrypted_dot_packed_batch():
    pub, priv = key512()
    rng = np.random.default_rng(5)
    X, w = rng.normal(size=(40, 3)), np.array([0.5, -1.25, 2.0])
    pk = P.Packing.for_key(pub, 24, 12, frac_bits=16)
    cols = [P.encrypt_vector(pub, X[:, j], pk) for j in range(3)]
    out = P.encrypted_dot(cols, w, 4, rerandomize=False)  # sum |k| = 8 + 20 + 32 = 60
    assert out.magnitude == 60 and out.frac_bits == 20
    np.testing.assert_allclose(priv.decrypt_vector(out), X @ w, atol=4 * 2.0**-17)
    with pytest.raises(OverflowError):
        P.encrypted_dot(cols, w * 100, 4)
    with pytest.raises(ValueError, match="bias"):
        P.encrypted_dot(cols, w, 4, bias=1.0)


def test_aggregate_ciphertexts_and_packed_submissions():
    pub, priv = key512()
    assert priv.decrypt(P.aggregate([pub.encrypt(m) for m in (3, -10, 40)])) == 33
    rng = np.random.default_rng(6)
    subs = rng.integers(-(2**15) + 1, 2**15, size=(20, 30))
    pk = P.Packing.for_key(pub, 16, P.headroom_for(20))
    enc = [P.encrypt_vector(pub, s, pk, rng=rng) for s in subs]
    total = P.aggregate(enc)
    assert priv.decrypt_vector_ints(total) == subs.sum(axis=0).tolist()
    with pytest.raises(ValueError, match="nothing"):
        P.aggregate([])
    with pytest.raises(TypeError, match="only"):
        P.aggregate([enc[0], pub.encrypt(1)])


# --------------------------------------------------------------------------- backends


def test_python_backend_by_monkeypatch(monkeypatch):
    monkeypatch.setattr(P, "BACKEND", P.PYTHON)
    pub, priv = P.keygen(256, rng=11)
    assert pub.backend is P.PYTHON and type(pub._n) is int
    a, b = pub.encrypt(-20, rng=1), pub.encrypt(50, rng=2)
    assert priv.decrypt(a + b) == 30 and priv.decrypt(a * 3) == -60
    assert type((a + b)._c) is int
    pk = P.Packing.for_key(pub, 10, 3)
    v = P.encrypt_vector(pub, [1, -2, 3], pk, rng=3)
    assert priv.decrypt_vector_ints(v * 2 + v) == [3, -6, 9]


@pytest.mark.skipif(P.GMPY2 is None, reason="gmpy2 not installed")
def test_backends_agree_bit_for_bit():
    pub_g, priv_g = P.keygen(256, rng=12, backend="gmpy2")
    pub_p, priv_p = P.keygen(256, rng=12, backend="python")
    assert (priv_g.p, priv_g.q) == (priv_p.p, priv_p.q)
    cg, cp = pub_g.encrypt(-77, rng=4), pub_p.encrypt(-77, rng=4)
    assert cg.c == cp.c
    assert (cg * -3 + cg).c == (cp * -3 + cp).c
    assert priv_p.decrypt(P.Ciphertext(pub_p, cg.c)) == -77
    pg = P.RandomnessPool(pub_g, 3, method="djn", rng=5, window=4)
    pp = P.RandomnessPool(pub_p, 3, method="djn", rng=5, window=4)
    assert pg._values == pp._values


def test_missing_gmpy2_backend_is_reported(monkeypatch):
    monkeypatch.setattr(P, "GMPY2", None)
    with pytest.raises(ValueError, match="not installed"):
        P.keygen(64, backend="gmpy2")
    with pytest.raises(ValueError, match="unknown backend"):
        P.keygen(64, backend="gmp")


# --------------------------------------------------------------------------- python-paillier


@pytest.fixture(scope="module")
def phe_keys():
    phe = pytest.importorskip("phe")
    pub, priv = P.keygen(1024, rng=77)
    ppub = phe.PaillierPublicKey(pub.n)
    return phe, pub, priv, ppub, phe.PaillierPrivateKey(ppub, priv.p, priv.q)


def test_phe_decrypts_ours(phe_keys):
    phe, pub, priv, ppub, ppriv = phe_keys
    for m in (0, 1, 12345678901234567890, pub.max_int):
        assert ppriv.raw_decrypt(pub.encrypt(m).c) == m
    assert ppriv.raw_decrypt(pub.encrypt(-5).c) == pub.n - 5
    # signed integers through phe's EncryptedNumber (exponent 0)
    for m in (-5, 42, -(10**30)):
        assert ppriv.decrypt(phe.EncryptedNumber(ppub, pub.encrypt(m).c)) == m
    a, b = pub.encrypt(100), pub.encrypt(-30)
    assert ppriv.decrypt(phe.EncryptedNumber(ppub, (a * 3 + b).c)) == 270


def test_ours_decrypts_phe(phe_keys):
    phe, pub, priv, ppub, ppriv = phe_keys
    for m in (0, 7, 2**200, pub.n - 1):
        c = ppub.raw_encrypt(m)
        assert priv.raw_decrypt(c) == m
    for m in (-5, 42, -(10**30)):
        assert priv.decrypt(P.Ciphertext(pub, ppub.encrypt(m).ciphertext())) == m
    # the sum of a phe ciphertext and one of ours, computed by phe, decrypted by us
    mixed = ppub.encrypt(1000) + phe.EncryptedNumber(ppub, pub.encrypt(-1).c)
    assert priv.decrypt(P.Ciphertext(pub, mixed.ciphertext())) == 999


def test_phe_decrypts_packed_and_pooled(phe_keys):
    phe, pub, priv, ppub, ppriv = phe_keys
    pk = P.Packing.for_key(pub, 16, 4)
    vals = list(range(-20, 20))
    v = P.encrypt_vector(pub, vals, pk, pool=P.RandomnessPool(pub, 1, method="djn", window=4))
    (ct,) = v.ciphertexts
    assert pk.unpack(ppriv.raw_decrypt(ct.c), len(vals)) == vals


def test_keys_from_phe(phe_keys):
    phe = phe_keys[0]
    ppub, ppriv = phe.generate_paillier_keypair(n_length=512)
    pub = P.PublicKey(ppub.n)
    priv = P.PrivateKey(pub, ppriv.p, ppriv.q)
    assert priv.decrypt(P.Ciphertext(pub, ppub.encrypt(-314).ciphertext())) == -314
    assert ppriv.decrypt(phe.EncryptedNumber(ppub, pub.encrypt(-314).c)) == -314
