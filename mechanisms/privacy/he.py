"""Secure ridge training and scoring under Paillier encryption, vertically partitioned data.

Setting (semi-honest, non-colluding). ``P`` providers each hold a block of feature
columns ``X_i`` (``n`` rows, ``d_i`` columns; the same rows in the same order); the
target ``y`` is public; the developer ``D`` holds a Paillier key pair
(:mod:`mechanisms.privacy.paillier`) and ends up with the weights, nothing else.

Training (:func:`secure_ridge_he`), after Hardy et al., "Private federated learning on
vertically partitioned data via entity resolution and additively homomorphic
encryption", arXiv:1711.10677 (2017; the N1 Analytics / python-paillier authors):
full-batch gradient descent on the ridge objective, the same update as
:func:`mechanisms.privacy.mpc.ridge_gd`,

    w <- w (1 - lr lam) - (lr / n) X' (X w - y),   from w = 0, for ``epochs`` epochs,

where provider ``i`` keeps its block ``w_i`` of ``w`` in float64 throughout. One epoch is
a star of four rounds, provider 1 acting as aggregator:

1. every provider computes ``u_i = X_i w_i``; providers 2..P send ``Enc(u_i)`` (fixed
   point, ``frac`` fractional bits) to provider 1;
2. provider 1 forms ``Enc(r) = sum_{i>=2} Enc(u_i) + (u_1 - y)`` (ciphertext products
   and one plaintext addition ``c (1 + m n) mod n^2`` per row: ``r = X w - y`` at scale
   ``2^frac``) and sends it to providers 2..P;
3. provider ``i`` computes ``Enc(g_i) = X_i' Enc(r)``, for each column ``j``
   ``prod_k Enc(r_k)^x_kj`` with ``x_kj = round(X_kj 2^frac)`` as exponent (negative
   exponents as :func:`~mechanisms.privacy.paillier.encrypted_dot` does: a positive and a
   negative product and one inversion per output), adds ``Enc(mask_ij)`` and sends the
   ``d_i`` ciphertexts to ``D``;
4. ``D`` decrypts ``g_ij + mask_ij`` and sends the integers back; provider ``i``
   subtracts its masks, decodes ``g_i`` (scale ``2^(2 frac)``) and updates ``w_i``.

At the end each provider sends ``w_i`` to ``D`` (one more round). Deliberate
differences from Hardy et al.: the squared loss (its gradient is linear, so no Taylor
approximation of the logistic loss is needed), ``P >= 2`` providers in a star instead of
two, a public target, full batches. With a single provider no cryptography is needed
(it holds all the features and ``y`` is public): it runs
:func:`~mechanisms.privacy.mpc.ridge_gd` itself and sends ``w`` (1 round, ``8 d`` bytes).

Masks and windows. The protocol uses fixed-width encodings, so that what it costs is a
function of the shapes alone. Features must satisfy ``|x| < 2^feature_bits``: their
exponents ``|round(x 2^frac)|`` fit ``W = frac + feature_bits`` bits (checked, else
``ValueError``). A gradient coordinate is an integer ``|g| < 2^B`` with
``B = ceil(log2 n) + feature_bits + residual_bits + 2 frac`` (it holds while
``|r| < 2^residual_bits``); its mask is uniform on ``[0, 2^(B + s + 1))`` with ``s``
the statistical security parameter (``STAT_SEC = 40``), so for any two gradients in
the window the masked values' distributions are within statistical distance
``2^(B+1) / 2^(B+s+1) = 2^-s``. The masked value lies in ``(-2^B, 2^(B+s+2))``; it
decrypts without wrap-around when ``2^(B+s+2) <= 2^(bits-2) <= max_int``, i.e. for a
key of at least ``B + s + 4`` bits (else ``ValueError``, naming the bits needed). A
provider that unmasks a gradient outside the window raises ``ValueError`` (its mask
would no longer hide it).

What each party sees: provider 1 sees ciphertexts ``Enc(u_i)``; providers 2..P see
``Enc(r)``; ``D`` sees only masked gradients and the final ``w``. As in Hardy et al.,
each provider learns its own block's gradient ``X_i' r`` every epoch (it needs it to
update ``w_i``); that leakage is the protocol's, not hidden here. Obfuscators are as
secret as plaintexts, so each party has its own
:class:`~mechanisms.privacy.paillier.RandomnessPool`, filled before the run with exactly
the obfuscators it will use.

Scoring (:func:`secure_predict_he`): ``D`` sends ``Enc(w_i)`` to provider ``i``
(1 round); provider ``i`` computes ``Enc(X_i w_i)`` row by row with its features as
exponents; providers 2..P send theirs to provider 1 (1 round), who adds them,
re-randomizes (the product's randomness is a function of ``D``'s, which would let ``D``
test guesses of ``X``) and sends ``Enc(X w)`` to ``D`` (1 round), who decrypts it.

Accuracy. Weights stay in float64 at their providers; the only roundings are the
encodings of ``u_i`` (``P - 1`` per row), of ``u_1 - y`` (one per row) and of the
features, each off by at most ``2^-(f+1)`` (``f = frac``). So each decrypted gradient
coordinate differs from ``X' (X w - y)`` at the same weights by at most
``n 2^-(f+1) (P Xh + R_t)`` (``Xh = max |x|`` of the encoded features, ``R_t = max_k
|r_k|`` at epoch ``t``). The error ``e_t`` of the weights then obeys
``e_{t+1} = A e_t + delta_t`` with ``A = (1 - lr lam) I - (lr / n) X'X`` and
``||delta_t||_2 <= lr sqrt(d) 2^-(f+1) (P Xh + R_t)``; if ``||A||_2 <= 1`` (i.e.
``lr (lam + lambda_max(X'X / n)) <= 2``)

    ||w - ridge_gd(X, y)||_2 <= lr sqrt(d) 2^-(f+1) sum_t (P Xh + R_t)

(float64 rounding adds ~1e-16 relative). E.g. ``f = 24``, 100 epochs, ``lr = 0.1``,
``d = 10``, ``P = 3``, ``Xh = 4``, ``R = 3``: 1.4e-5. Scoring: ``|yhat - X w| <=
d 2^-(f+1) (Xh + max |w|)`` per row.

Cost-counting convention (:class:`HeCosts`)
-------------------------------------------
Counted where the protocol performs them, for all parties together. ``obfuscators``:
``r^n mod n^2`` computations (offline, in the pools; an empty pool computing one on
the spot also counts here). ``encryptions``: online uses of a pooled obfuscator, one
product mod ``n^2`` each: fresh encryptions and re-randomizations. ``decryptions``:
CRT decryptions by ``D``. ``additions``: products mod ``n^2``: ciphertext + ciphertext,
ciphertext + plaintext (``c (1 + m n)``), and the accumulations of an encrypted dot
product. ``exponentiations`` and ``exponent_bits``: every ``c^k mod n^2`` with ``k`` a
feature, charged the full window ``W = frac + feature_bits`` bits, what a constant-time
implementation pays. ``inversions``: modular inverses mod ``n^2``. The encrypted dot
product of ``n`` ciphertexts with ``n`` features is charged as a constant-time
implementation would run it: ``n`` exponentiations, ``n`` products into two
accumulators that start at 1, one inversion and one product (``n + 1`` additions);
:func:`~mechanisms.privacy.paillier.encrypted_dot`, which does the work, skips zero
exponents and the inversion when no exponent is negative, so it does at most what is
charged. ``bytes_total``: every message; a ciphertext is ``C = ceil(bits(n^2) / 8) =
ceil(2 key_bits / 8)`` bytes (``n^2`` has ``2 key_bits - 1`` or ``2 key_bits`` bits,
and ``2 key_bits - 1`` is odd, so both round up alike), a float 8 bytes, a masked
gradient a signed integer of ``B + s + 3`` bits, ``M = ceil((B + s + 3) / 8)`` bytes.
``bytes_critical``: per round, the most bytes any single party sends in it (what the
latency sees), summed over rounds. ``rounds``: sequential rounds. Key generation and
the distribution of the public key are not counted (one long-lived key pair).
``a + b`` composes in sequence. Per training epoch (``P >= 2``, ``d = sum d_i``):

=====  =========  ====================  =========  =========  ====  ==================
round  sender(s)  encryptions (= obf.)  additions  exponent.  inv.  bytes (critical)
=====  =========  ====================  =========  =========  ====  ==================
1      2..P -> 1  (P - 1) n             0          0          0     (P - 1) n C (n C)
2      1 -> 2..P  0                     (P - 1) n  0          0     (P - 1) n C (same)
3      all -> D   d                     d (n + 2)  n d        d     d C (max d_i C)
4      D -> all   0 (d decryptions)     0          0          0     d M (d M)
=====  =========  ====================  =========  =========  ====  ==================

Each exponentiation is charged ``W`` bits (``n d W`` exponent bits); plus the final
round, ``8 d`` bytes (critical ``8 max d_i``). Scoring ``m`` rows:
``d + m`` encryptions and obfuscators (``Enc(w)``, the re-randomizations), ``m d``
exponentiations, ``m P`` inversions, ``m (d + P) + (P - 1) m`` additions, ``m``
decryptions; rounds ``D -> all`` (``d C``), ``2..P -> 1`` (``(P - 1) m C``, critical
``m C``; absent when ``P = 1``), ``1 -> D`` (``m C``). :func:`he_training_costs` and
:func:`he_inference_costs` give these counts from the shapes alone; they equal the
measured ones field by field (tested).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np

from mechanisms.privacy import paillier
from mechanisms.privacy.mpc import ridge_gd
from mechanisms.privacy.paillier import (
    Ciphertext,
    PrivateKey,
    PublicKey,
    RandomnessPool,
    encode_fixed,
)

__all__ = [
    "DEFAULT_KEY_BITS",
    "FEATURE_BITS",
    "FLOAT_BYTES",
    "FRAC_BITS",
    "RESIDUAL_BITS",
    "STAT_SEC",
    "HeCosts",
    "ciphertext_bytes",
    "gradient_window_bits",
    "he_inference_costs",
    "he_training_costs",
    "required_key_bits",
    "ridge_gd",
    "secure_predict_he",
    "secure_ridge_he",
]

#: Key size used when neither ``keys`` nor ``key_bits`` is given (NIST SP 800-57: 2048).
DEFAULT_KEY_BITS = 2048
#: Fractional bits of every fixed-point encoding (features, ``u_i``, weights).
FRAC_BITS = 24
#: Features must satisfy ``|x| < 2^FEATURE_BITS`` (the exponent window's integer part).
FEATURE_BITS = 10
#: Residuals ``|X w - y| < 2^RESIDUAL_BITS`` keep gradients inside the masking window.
RESIDUAL_BITS = 16
#: Statistical security parameter ``s`` of the gradient masks (distance ``<= 2^-s``).
STAT_SEC = 40
#: Bytes of a float sent in the clear (a weight).
FLOAT_BYTES = 8

_D = "D"  # the developer's party id in the round bookkeeping; providers are 0..P-1


# --------------------------------------------------------------------------- costs


@dataclass(frozen=True)
class HeCosts:
    """Resources of a Paillier protocol run; see the module docstring for the convention."""

    encryptions: int = 0
    obfuscators: int = 0
    decryptions: int = 0
    additions: int = 0
    exponent_bits: int = 0
    exponentiations: int = 0
    inversions: int = 0
    bytes_total: int = 0
    bytes_critical: int = 0
    rounds: int = 0

    def __add__(self, other: HeCosts) -> HeCosts:
        """Sequential composition: every field adds up."""
        if not isinstance(other, HeCosts):
            return NotImplemented
        return HeCosts(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )


def _times(costs: HeCosts, k: int) -> HeCosts:
    """``costs`` repeated ``k`` times in sequence."""
    return HeCosts(**{f.name: k * getattr(costs, f.name) for f in fields(costs)})


def ciphertext_bytes(key_bits: int) -> int:
    """Bytes of one ciphertext: ``ceil(bits(n^2) / 8) = ceil(2 key_bits / 8)``."""
    return -(-2 * key_bits // 8)


def gradient_window_bits(
    rows: int,
    *,
    frac: int = FRAC_BITS,
    feature_bits: int = FEATURE_BITS,
    residual_bits: int = RESIDUAL_BITS,
) -> int:
    """``B = ceil(log2 n) + feature_bits + residual_bits + 2 frac``: gradients ``|g| < 2^B``.

    ``g_j = sum_k x_kj r_k`` over ``n`` rows, with ``|x_kj| < 2^(frac + feature_bits)``
    and ``|r_k| < 2^(frac + residual_bits)`` in fixed point.
    """
    return (int(rows) - 1).bit_length() + feature_bits + residual_bits + 2 * frac


def required_key_bits(
    rows: int,
    *,
    frac: int = FRAC_BITS,
    feature_bits: int = FEATURE_BITS,
    residual_bits: int = RESIDUAL_BITS,
    stat_sec: int = STAT_SEC,
) -> int:
    """Smallest key that holds a masked gradient: ``B + s + 4`` bits (module docstring).

    A masked gradient lies in ``(-2^B, 2^(B+s+2))`` and the signed plaintext range of a
    ``b``-bit key contains ``[-2^(b-2), 2^(b-2)]``.
    """
    b = gradient_window_bits(
        rows, frac=frac, feature_bits=feature_bits, residual_bits=residual_bits
    )
    return b + stat_sec + 4


def _check_key_room(key_bits: int, rows: int, frac, feature_bits, residual_bits, stat_sec):
    need = required_key_bits(
        rows,
        frac=frac,
        feature_bits=feature_bits,
        residual_bits=residual_bits,
        stat_sec=stat_sec,
    )
    if key_bits < need:
        raise ValueError(
            f"a {key_bits}-bit key is too small for masked gradients of {rows} rows "
            f"(frac={frac}, feature_bits={feature_bits}, residual_bits={residual_bits}, "
            f"stat_sec={stat_sec}): it needs at least {need} bits"
        )


def _check_params(frac, feature_bits, residual_bits, stat_sec) -> None:
    for name, v in (
        ("frac", frac),
        ("feature_bits", feature_bits),
        ("residual_bits", residual_bits),
        ("stat_sec", stat_sec),
    ):
        if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {v!r}")


def _check_dims(rows: int, dims: Sequence[int]) -> tuple[int, list[int]]:
    n, ds = int(rows), [int(x) for x in dims]
    if n < 1 or not ds or min(ds) < 1:
        raise ValueError(f"need rows >= 1 and one or more dims, each >= 1; got {n}, {ds}")
    return n, ds


def he_training_costs(
    n: int,
    dims: Sequence[int],
    epochs: int,
    *,
    key_bits: int = DEFAULT_KEY_BITS,
    frac: int = FRAC_BITS,
    feature_bits: int = FEATURE_BITS,
    residual_bits: int = RESIDUAL_BITS,
    stat_sec: int = STAT_SEC,
) -> HeCosts:
    """The :class:`HeCosts` that :func:`secure_ridge_he` reports, from the shapes alone.

    ``n`` rows, ``dims = [d_1, ..., d_P]`` columns per provider. Per epoch (``P >= 2``,
    the table of the module docstring): ``(P - 1) n`` encryptions and obfuscators of
    ``u_i``, ``(P - 1) n`` additions forming ``Enc(r)``, then per gradient coordinate
    ``n`` exponentiations of ``frac + feature_bits`` bits, ``n + 2`` additions, one
    inversion, one encryption (its mask) and one decryption; 4 rounds moving
    ``2 (P - 1) n C + d C + d M`` bytes. Then ``8 d`` bytes in 1 round. A single
    provider trains alone: 1 round, ``8 d`` bytes. Raises ``ValueError`` if the key is
    too small for the masked gradients (:func:`required_key_bits`), as the protocol does.
    """
    n, ds = _check_dims(n, dims)
    _check_params(frac, feature_bits, residual_bits, stat_sec)
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    d, p = sum(ds), len(ds)
    final = HeCosts(bytes_total=FLOAT_BYTES * d, bytes_critical=FLOAT_BYTES * max(ds), rounds=1)
    if p == 1:
        return final
    _check_key_room(key_bits, n, frac, feature_bits, residual_bits, stat_sec)
    c = ciphertext_bytes(key_bits)
    b = gradient_window_bits(n, frac=frac, feature_bits=feature_bits, residual_bits=residual_bits)
    m = -(-(b + stat_sec + 3) // 8)
    width = frac + feature_bits
    epoch = (
        HeCosts(
            encryptions=(p - 1) * n,
            obfuscators=(p - 1) * n,
            bytes_total=(p - 1) * n * c,
            bytes_critical=n * c,
            rounds=1,
        )
        + HeCosts(
            additions=(p - 1) * n,
            bytes_total=(p - 1) * n * c,
            bytes_critical=(p - 1) * n * c,
            rounds=1,
        )
        + HeCosts(
            encryptions=d,
            obfuscators=d,
            additions=d * (n + 2),
            exponentiations=d * n,
            exponent_bits=d * n * width,
            inversions=d,
            bytes_total=d * c,
            bytes_critical=max(ds) * c,
            rounds=1,
        )
        + HeCosts(decryptions=d, bytes_total=d * m, bytes_critical=d * m, rounds=1)
    )
    return _times(epoch, int(epochs)) + final


def he_inference_costs(
    rows: int,
    dims: Sequence[int],
    *,
    key_bits: int = DEFAULT_KEY_BITS,
    frac: int = FRAC_BITS,
    feature_bits: int = FEATURE_BITS,
) -> HeCosts:
    """The :class:`HeCosts` that :func:`secure_predict_he` reports for ``rows`` samples.

    ``Enc(w)``: ``d`` encryptions, ``d C`` bytes (1 round); every provider's encrypted
    dot products: ``m d_i`` exponentiations of ``frac + feature_bits`` bits,
    ``m (d_i + 1)`` additions, ``m`` inversions; providers 2..P send ``m`` ciphertexts
    each to provider 1 (1 round, absent when ``P = 1``), who adds them (``(P - 1) m``),
    re-randomizes them (``m`` encryptions) and sends them to ``D`` (1 round), who
    decrypts ``m``.
    """
    m, ds = _check_dims(rows, dims)
    _check_params(frac, feature_bits, 0, 0)
    d, p = sum(ds), len(ds)
    c = ciphertext_bytes(key_bits)
    width = frac + feature_bits
    costs = HeCosts(encryptions=d, obfuscators=d, bytes_total=d * c, bytes_critical=d * c, rounds=1)
    costs += HeCosts(
        additions=m * (d + p),
        exponentiations=m * d,
        exponent_bits=m * d * width,
        inversions=m * p,
    )
    if p > 1:
        costs += HeCosts(bytes_total=(p - 1) * m * c, bytes_critical=m * c, rounds=1)
    return costs + HeCosts(
        additions=(p - 1) * m,
        encryptions=m,
        obfuscators=m,
        decryptions=m,
        bytes_total=m * c,
        bytes_critical=m * c,
        rounds=1,
    )


# --------------------------------------------------------------------------- metering


class _Meter:
    """Performs the protocol's operations through :mod:`paillier` and counts them."""

    def __init__(self, public_key: PublicKey, width: int):
        self.pub = public_key
        self.width = width
        self.ct_bytes = ciphertext_bytes(public_key.bits)
        self.n = dict.fromkeys((f.name for f in fields(HeCosts)), 0)
        self.pools: list[RandomnessPool] = []

    def pool(self, size: int, rng: np.random.Generator) -> RandomnessPool:
        """A party's pool, filled offline with ``size`` obfuscators."""
        pool = RandomnessPool(self.pub, size, method="paillier", rng=rng)
        self.pools.append(pool)
        self.n["obfuscators"] += size
        return pool

    def encrypt_float(self, x: float, frac: int, pool: RandomnessPool) -> Ciphertext:
        self.n["encryptions"] += 1
        return self.pub.encrypt_float(x, frac, pool=pool)

    def encrypt_int(self, m: int, frac: int, pool: RandomnessPool) -> Ciphertext:
        """``Enc(m)`` read at scale ``2^frac`` (no rescaling: ``m`` is already scaled)."""
        self.n["encryptions"] += 1
        return Ciphertext(self.pub, self.pub.encrypt(m, pool=pool).c, frac)

    def rerandomize(self, ct: Ciphertext, pool: RandomnessPool) -> Ciphertext:
        self.n["encryptions"] += 1
        return self.pub.rerandomize(ct, pool=pool)

    def add(self, a: Ciphertext, b: Ciphertext | float) -> Ciphertext:
        if isinstance(b, Ciphertext) and a.frac_bits != b.frac_bits:
            raise AssertionError("the protocol only adds ciphertexts of one scale")
        self.n["additions"] += 1
        return a + b

    def dot(self, cts: Sequence[Ciphertext], column: np.ndarray, frac: int) -> Ciphertext:
        """``prod_k cts[k]^round(column[k] 2^frac)``, charged as constant-time (docstring)."""
        k = len(cts)
        self.n["exponentiations"] += k
        self.n["exponent_bits"] += k * self.width
        self.n["additions"] += k + 1
        self.n["inversions"] += 1
        return paillier.encrypted_dot(cts, column, frac, rerandomize=False)

    def decrypt(self, priv: PrivateKey, ct: Ciphertext) -> int:
        self.n["decryptions"] += 1
        return priv.decrypt(ct)

    def round(self, sent: dict[object, int]) -> None:
        """One round in which each party ``p`` sends ``sent[p]`` bytes."""
        self.n["rounds"] += 1
        self.n["bytes_total"] += sum(sent.values())
        self.n["bytes_critical"] += max(sent.values())

    def costs(self) -> HeCosts:
        online = sum(p.online for p in self.pools)  # obfuscators computed on the spot
        return HeCosts(**{**self.n, "obfuscators": self.n["obfuscators"] + online})


# --------------------------------------------------------------------------- inputs


def _blocks(features_by_provider, rows_like: str) -> tuple[list[np.ndarray], int]:
    blocks = [np.asarray(b, dtype=np.float64) for b in features_by_provider]
    if not blocks or any(b.ndim != 2 or b.shape[1] < 1 for b in blocks):
        raise ValueError(
            "features_by_provider must be a non-empty list of 2-D arrays with >= 1 column"
        )
    n = blocks[0].shape[0]
    if n < 1 or any(b.shape[0] != n for b in blocks):
        raise ValueError(
            f"every provider's block needs the same number of rows as {rows_like}; got "
            f"{[b.shape for b in blocks]}"
        )
    if not all(np.isfinite(b).all() for b in blocks):
        raise ValueError("features must be finite")
    return blocks, n


def _check_feature_window(blocks: list[np.ndarray], frac: int, feature_bits: int) -> None:
    """Every exponent ``|round(x 2^frac)|`` must fit ``frac + feature_bits`` bits."""
    width = frac + feature_bits
    for i, b in enumerate(blocks):
        top = float(np.abs(b).max())
        if encode_fixed(top, frac).bit_length() > width:
            raise ValueError(
                f"provider {i}'s features reach |x| = {top:g}, outside the exponent window "
                f"of frac + feature_bits = {width} bits (|x| < 2^{feature_bits}); "
                "raise feature_bits"
            )


def _keys(keys, key_bits: int | None, rng: np.random.Generator):
    if keys is None:
        return paillier.keygen(DEFAULT_KEY_BITS if key_bits is None else key_bits, rng)
    pub, priv = keys
    if not isinstance(pub, PublicKey) or not isinstance(priv, PrivateKey):
        raise TypeError("keys must be a (PublicKey, PrivateKey) pair")
    if priv.public_key != pub:
        raise ValueError("the private key does not belong to the public key")
    if key_bits is not None and key_bits != pub.bits:
        raise ValueError(f"key_bits={key_bits} but the given keys have {pub.bits} bits")
    return pub, priv


def _check_rng(rng) -> None:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator, not {type(rng).__name__}")


# --------------------------------------------------------------------------- protocols


def secure_ridge_he(
    features_by_provider: list[np.ndarray],
    y: np.ndarray,
    lam: float,
    rng: np.random.Generator,
    *,
    epochs: int = 100,
    lr: float = 0.1,
    key_bits: int | None = None,
    frac: int = FRAC_BITS,
    keys: tuple[PublicKey, PrivateKey] | None = None,
    feature_bits: int = FEATURE_BITS,
    residual_bits: int = RESIDUAL_BITS,
    stat_sec: int = STAT_SEC,
) -> tuple[np.ndarray, HeCosts]:
    """Ridge regression by gradient descent on vertically partitioned data under Paillier.

    The protocol of the module docstring (after Hardy et al., arXiv:1711.10677): the
    update ``w <- w (1 - lr lam) - (lr / n) X' (X w - y)`` of
    :func:`~mechanisms.privacy.mpc.ridge_gd` from ``w = 0``, each provider keeping its
    block of ``w``, ``D`` decrypting only masked gradients. Returns ``(weights (d,),
    costs)``; the weights equal ``ridge_gd`` within the bound of the module docstring,
    the costs equal :func:`he_training_costs`.

    ``keys``: ``D``'s ``(public, private)`` pair; without it one of ``key_bits`` bits
    (default ``DEFAULT_KEY_BITS``) is generated from ``rng`` (not counted either way).
    Randomness (key generation, every party's obfuscators and masks) comes from ``rng``
    through ``rng.spawn``, so a seed reproduces the run. Raises ``ValueError`` for bad
    shapes or parameters and, with two or more providers, for features outside
    ``|x| < 2^feature_bits``, a key too small for the masked gradients
    (:func:`required_key_bits`) or a gradient that leaves its masking window. A single
    provider trains alone in plaintext (module docstring); ``keys`` are then unused.
    """
    _check_rng(rng)
    blocks, n = _blocks(features_by_provider, "y")
    y = np.asarray(y, dtype=np.float64)
    if y.shape != (n,) or not np.isfinite(y).all():
        raise ValueError(f"y must be a finite vector of the blocks' {n} rows, got {y.shape}")
    if epochs < 0 or not lr > 0 or not lam >= 0:
        raise ValueError(f"need epochs >= 0, lr > 0, lam >= 0; got {epochs}, {lr}, {lam}")
    _check_params(frac, feature_bits, residual_bits, stat_sec)
    dims = [b.shape[1] for b in blocks]
    p, d = len(blocks), sum(dims)
    if p == 1:  # the lone provider holds every feature and y is public: no HE needed
        w = ridge_gd(blocks[0], y, lam, epochs=epochs, lr=lr)
        return w, HeCosts(bytes_total=FLOAT_BYTES * d, bytes_critical=FLOAT_BYTES * d, rounds=1)
    _check_feature_window(blocks, frac, feature_bits)
    key_rng, *party_rngs = rng.spawn(p + 1)
    pub, priv = _keys(keys, key_bits, key_rng)
    _check_key_room(pub.bits, n, frac, feature_bits, residual_bits, stat_sec)
    window = gradient_window_bits(
        n, frac=frac, feature_bits=feature_bits, residual_bits=residual_bits
    )
    mask_bits = window + stat_sec + 1
    masked_bytes = -(-(window + stat_sec + 3) // 8)
    meter = _Meter(pub, frac + feature_bits)
    cb = meter.ct_bytes
    pools = [meter.pool(epochs * ((n if i > 0 else 0) + dims[i]), party_rngs[i]) for i in range(p)]
    w = [np.zeros(k) for k in dims]
    keep, step = 1.0 - lr * lam, lr / n
    for _ in range(epochs):
        # 1. providers 2..P send Enc(X_i w_i) to provider 1
        enc_u = [
            [meter.encrypt_float(float(v), frac, pools[i]) for v in blocks[i] @ w[i]]
            for i in range(1, p)
        ]
        meter.round({i: n * cb for i in range(1, p)})
        # 2. provider 1 adds them and its plaintext u_1 - y: Enc(r), sent to 2..P
        own = blocks[0] @ w[0] - y
        enc_r = []
        for k in range(n):
            acc = enc_u[0][k]
            for i in range(1, p - 1):
                acc = meter.add(acc, enc_u[i][k])
            enc_r.append(meter.add(acc, float(own[k])))
        meter.round({0: (p - 1) * n * cb})
        # 3. each provider sends Enc(X_i' r + mask_i) to D
        masks, masked = [], []
        for i in range(p):
            mi = [paillier._randbits(mask_bits, party_rngs[i]) for _ in range(dims[i])]
            masks.append(mi)
            masked.append(
                [
                    meter.add(
                        meter.dot(enc_r, blocks[i][:, j], frac),
                        meter.encrypt_int(mi[j], 2 * frac, pools[i]),
                    )
                    for j in range(dims[i])
                ]
            )
        meter.round({i: dims[i] * cb for i in range(p)})
        # 4. D decrypts the masked gradients and returns them; providers unmask, update
        opened = [[meter.decrypt(priv, ct) for ct in cts] for cts in masked]
        meter.round({_D: d * masked_bytes})
        for i in range(p):
            g = [v - m for v, m in zip(opened[i], masks[i], strict=True)]
            if max(abs(x) for x in g) >= 1 << window:
                raise ValueError(
                    f"a gradient left its masking window of {window} bits: residuals "
                    f"reached 2^residual_bits = 2^{residual_bits}; raise residual_bits"
                )
            grad = np.array([paillier.decode_fixed(x, 2 * frac) for x in g])
            w[i] = w[i] * keep - step * grad
    meter.round({i: FLOAT_BYTES * dims[i] for i in range(p)})
    return np.concatenate(w), meter.costs()


def secure_predict_he(
    features_by_provider: list[np.ndarray],
    weights: np.ndarray,
    rng: np.random.Generator,
    *,
    keys: tuple[PublicKey, PrivateKey] | None = None,
    key_bits: int | None = None,
    frac: int = FRAC_BITS,
    feature_bits: int = FEATURE_BITS,
) -> tuple[np.ndarray, HeCosts]:
    """Linear scoring ``X w`` with ``D``'s encrypted weights and the providers' features.

    ``D`` sends ``Enc(round(w_i 2^frac))`` to provider ``i``, which computes
    ``Enc(X_i w_i)`` row by row (:func:`~mechanisms.privacy.paillier.encrypted_dot`,
    features as exponents); provider 1 adds the providers' results, re-randomizes them
    and sends ``Enc(X w)`` to ``D``, who decrypts (module docstring). Returns
    ``(X w (m,), costs)``, costs equal to :func:`he_inference_costs`; the error is at
    most ``d 2^-(frac+1) (max |x| + max |w|)`` per row. Raises ``ValueError`` if the key
    cannot hold ``|X w|`` at scale ``2^(2 frac)`` for features in the window.
    """
    _check_rng(rng)
    blocks, m = _blocks(features_by_provider, "the other blocks")
    dims = [b.shape[1] for b in blocks]
    p, d = len(blocks), sum(dims)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (d,) or not np.isfinite(w).all():
        raise ValueError(f"weights must be a finite vector of the blocks' {d} columns")
    _check_params(frac, feature_bits, 0, 0)
    _check_feature_window(blocks, frac, feature_bits)
    key_rng, dev_rng, agg_rng = rng.spawn(3)
    pub, priv = _keys(keys, key_bits, key_rng)
    w_ints = [encode_fixed(float(v), frac) for v in w]
    bound = d * ((1 << (frac + feature_bits)) - 1) * max(abs(v) for v in w_ints)
    if bound.bit_length() + 2 > pub.bits:
        raise ValueError(
            f"a {pub.bits}-bit key is too small for scores X w at scale 2^{2 * frac} "
            f"(|w| <= {np.abs(w).max():g}, features < 2^{feature_bits}): it needs at "
            f"least {bound.bit_length() + 2} bits"
        )
    meter = _Meter(pub, frac + feature_bits)
    cb = meter.ct_bytes
    dev_pool, agg_pool = meter.pool(d, dev_rng), meter.pool(m, agg_rng)
    # 1. D sends Enc(w_i) to provider i
    enc_w = [meter.encrypt_float(float(v), frac, dev_pool) for v in w]
    meter.round({_D: d * cb})
    # 2. each provider computes Enc(X_i w_i); providers 2..P send theirs to provider 1
    starts = np.cumsum([0, *dims])
    parts = [
        [meter.dot(enc_w[starts[i] : starts[i + 1]], row, frac) for row in blocks[i]]
        for i in range(p)
    ]
    if p > 1:
        meter.round({i: m * cb for i in range(1, p)})
    # 3. provider 1 adds, re-randomizes and sends Enc(X w) to D, who decrypts
    out = []
    for k in range(m):
        acc = parts[0][k]
        for i in range(1, p):
            acc = meter.add(acc, parts[i][k])
        out.append(meter.rerandomize(acc, agg_pool))
    meter.round({0: m * cb})
    scores = np.array([paillier.decode_fixed(meter.decrypt(priv, ct), 2 * frac) for ct in out])
    return scores, meter.costs()
