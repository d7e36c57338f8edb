"""Two-party secure computation over the ring Z_2^64, and secure training on shared data.

Setting (semi-honest, dealer model). Two non-colluding computing parties P0 and P1 hold
additive shares of every secret: ``x = x0 + x1 (mod 2^64)``, one share a numpy uint64
array each (uint64 arithmetic wraps around, so numpy *is* the ring). A trusted dealer
hands out correlated randomness before the inputs are known (Beaver triples) and never
receives anything. Data owners secret-share their inputs (one share to each party);
results are revealed only to their receiver (e.g. the developer gets its weights).

Fixed point. A real ``v`` is encoded as ``round(v * 2^f)`` in two's complement
(:func:`encode`, ``f = FRAC_BITS = 16`` by default). :class:`Shared` records its scale
``frac``; a product of two values at scale ``f`` is at scale ``2f`` and is brought
back by :func:`truncate`.

Protocols and sources
---------------------
* Sharing: ``x0`` uniform on Z_2^64, ``x1 = x - x0``. A single share is uniform whatever
  ``x`` is (tested by a chi-square test that rejects a deliberately bad sharing).
* Multiplication with Beaver triples (Beaver 1991, "Efficient multiparty protocols using
  circuit randomization", CRYPTO '91): the dealer shares ``a, b, c = a*b``; the parties
  open ``e = x - a`` and ``f = y - b`` (one round) and set
  ``z_i = c_i + e*b_i + f*a_i (+ e*f for P0)``. Matrix products use matrix triples
  ``c = a @ b`` (as in SecureML, Mohassel & Zhang 2017, Sec. 4.1) and the equivalent
  form ``z_i = c_i + e @ (b_i + [i=0] f) + a_i @ f``. A fixed left operand (the data
  matrix in training) is masked and opened once and reused for every product, with a
  fresh ``b, c`` each time (SecureML Sec. 4.1): :func:`mask_left`, :func:`masked_matmul`.
* Truncation, local (SecureML Sec. 3.1): P0 sets ``floor(x0 / 2^d)``, P1 sets
  ``2^64 - floor((2^64 - x1) / 2^d)``. The result is ``floor(x/2^d)`` or
  ``ceil(x/2^d)`` (error below one unit in the last place) unless the shares wrap the
  wrong way, which for a uniform ``x0`` happens with probability exactly
  ``|x| / 2^64`` (:func:`truncation_failure_probability`), below SecureML's bound
  ``2^(l_x + 1 - 64)`` for ``|x| < 2^l_x``; a failure is off by about ``2^(64-d)``.
  ``x`` here is the ring integer being truncated, e.g. ``|v| * 2^32`` for a product
  ``v`` of two 16-bit fixed-point numbers: ``|v| < 2^10`` fails with probability
  below ``2^-22``.
* Sigmoid: the Chebyshev interpolant of degree 9 of ``sigmoid(8 v)`` on ``v in [-1, 1]``
  (odd part plus 1/2), evaluated by Horner's rule in ``v^2`` with Beaver products
  (5 rounds). Maximum error ``SIGMOID_MAX_ERROR = 0.0135`` on ``[-8, 8]``; outside
  that range the polynomial diverges (``p(10) = 5.04``), so inputs must stay within
  it. SecureML (Sec. 4.3) uses a piecewise-linear function, which needs secure
  comparisons; CrypTen composes a limit approximation of exp with a Newton-Raphson
  reciprocal; this polynomial needs neither, only Beaver products.

Fast exact ring matrix products
-------------------------------
numpy's uint64 matmul is not BLAS-backed. :func:`ring_matmul` splits each 64-bit
operand into three balanced signed limbs of 22, 21 and 21 bits (offsets 0, 22, 43),
multiplies limbs with float64 BLAS, and recombines mod 2^64 with uint64 wrap-around.
Only five limb products are needed (Karatsuba for the middle term):
``M0 = A0 B0``, ``M2 = A1 B1``, ``(A0 + A1)(B0 + B1) - M0 - M2`` at offset 22 and
``A0 B2 + A2 B0 + 2 M2`` at offset 43 (products at offset >= 64 vanish). Every float
result is an integer of magnitude at most ``2.25 * 2^42 * K`` (K the inner dimension),
exact while below 2^53, and is converted by the ``1.5 * 2^52`` rounding trick, exact
below 2^51; both hold for ``K <= MAX_INNER = 341``. Longer inner dimensions are cut into
chunks of ``MAX_INNER`` summed mod 2^64, so every size is exact (tested against Python
integers, including ``K = MAX_INNER`` with every limb at its extreme, and shown to break
without the chunks). The products are computed transposed (``B^T A^T``, so one BLAS
call serves two products of the large operand's low limb) in column blocks with about
4 MB of float scratch. Products with at most ``THIN_COLUMNS`` columns (the
matrix-vector products of training) use numpy's own uint64 loops, which are faster
there. A Beaver product costs each party five float products of ``(m, 2k) @ (2k, n)``
(``[e | a_i] @ [b_i + [i=0] f ; f]``), about ten plaintext products: both parties
together do about twenty. The parties run one after the other in one process; the
memory the online phase writes into is allocated and touched offline (as a party's
buffer pool would be).

Cost-counting convention (:class:`Costs`)
-----------------------------------------
``local_ops``: ring operations (one add, subtract, multiply, shift or negate of one
element) of both computing parties together, counted from the protocol's formulas, not
from the float emulation above; a matrix product ``(m,k) @ (k,n)`` counts ``2mkn``. The
dealer's own work is not counted. ``bytes_per_party``: bytes each computing party sends
(the two send the same amount in every protocol here), 8 bytes per ring element,
including shares sent to the receiver of a revealed result. ``dealer_bytes``: bytes the
dealer sends to both parties together. ``input_bytes``: bytes data owners send to the
parties when sharing inputs (two shares, 16 bytes per element). ``rounds``: sequential
communication rounds (input sharing, each opening, each reveal); ``a + b`` composes in
sequence, ``a.parallel(b)`` in the same rounds. Per operation on ``N`` elements:

====================  ===========  ===============  =====================  ======
operation             local_ops    bytes_per_party  dealer_bytes           rounds
====================  ===========  ===============  =====================  ======
share (by an owner)   0            0                0                      1
reveal                N            8N               0                      1
add / sub             2N           0                0                      0
add_public            N            0                0                      0
mul_public            2N (+4N)     0                0                      0
truncate              4N           0                0                      0
mul (elementwise)     18N          16N              48N                    1
matmul (m,k)@(k,n)    8mkn+4mk     8(mk + kn)       16(mk + kn + mn)       1
                      +5kn+4mn
====================  ===========  ===============  =====================  ======

(:func:`mask_left` and :func:`masked_matmul` split the matmul row into its two
openings: ``4mk, 8mk, 16mk, 1`` once, then ``8mkn+5kn+4mn, 8kn, 16(kn+mn), 1`` per
product.)

Secure training
---------------
:func:`secure_ridge` and :func:`secure_logistic`: providers share column blocks of
``X`` (n, d), the label owner shares ``y``, the parties open ``X - A`` once (its
transpose reuses ``A^T``), then per epoch: ``u = trunc(X w)`` (1 round), for logistic
``p = sigmoid(u)`` (5 rounds), ``r = u - y`` or ``p - y``, ``g = trunc(X^T r)``
(1 round), ``w <- w (1 - lr lam) - (lr / n) g`` (local public products); only ``w``
is revealed, to the developer. Per epoch each party sends ``8 (d + n)`` bytes (plus
``80 n`` for the sigmoid). Every truncation of a value ``v`` held at scale 2^32 fails
with probability ``|v| 2^-32``; per epoch that sums to at most
``(n max|X w| + d (2 max|X^T r| + max|w|)) 2^-32``, plus ``150 n 2^-32`` for the
sigmoid (its Horner intermediates stay below 44 in absolute value). For ``n = 1000``,
``d = 10``, ``|X w| <= 8``, ``|X^T r| <= 2^10``: about 7e-6 per ridge epoch and 4e-5
per logistic epoch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.polynomial import chebyshev as _cheb

__all__ = [
    "ELEMENT_BYTES",
    "FRAC_BITS",
    "MAX_INNER",
    "RING_BITS",
    "SIGMOID_BOUND",
    "SIGMOID_DEGREE",
    "SIGMOID_MAX_ERROR",
    "THIN_COLUMNS",
    "Costs",
    "LeftMask",
    "MaskedLeft",
    "RightTriple",
    "Shared",
    "add",
    "add_public",
    "decode",
    "encode",
    "inference_costs",
    "left_mask",
    "logistic_gd",
    "mask_left",
    "masked_matmul",
    "matmul",
    "mul",
    "mul_public",
    "open_left",
    "random_ring",
    "reveal",
    "reveal_float",
    "ridge_closed_form",
    "ridge_gd",
    "right_triple",
    "ring_matmul",
    "secure_logistic",
    "secure_matmul",
    "secure_predict",
    "secure_ridge",
    "share",
    "share_float",
    "sigmoid",
    "sigmoid_coefficients",
    "sigmoid_poly",
    "sub",
    "training_costs",
    "truncate",
    "truncation_failure_probability",
]

RING_BITS = 64
FRAC_BITS = 16
ELEMENT_BYTES = 8
MAX_INNER = 341  # largest inner dimension of one exact float64 limb product (see above)
THIN_COLUMNS = 2  # products with at most this many columns skip the limbs
_SPLIT_BLOCK = 1 << 14  # elements per block of the limb split (two uint64 scratch rows)
_PRODUCT_BLOCK = 1 << 22  # bytes of float scratch per column block of the limb products
SIGMOID_BOUND = 8.0
SIGMOID_DEGREE = 9
SIGMOID_MAX_ERROR = 0.0135

_U64 = np.uint64
_RAW64 = (np.random.PCG64, np.random.PCG64DXSM, np.random.SFC64, np.random.Philox)
_F64 = np.float64
_MASK22 = _U64((1 << 22) - 1)
_MASK21 = _U64((1 << 21) - 1)
# Adding this offset turns the balanced digits (d0 in [-2^21, 2^21), d1 and d2 in
# [-2^20, 2^20)) into the unsigned digits of ``a + offset``.
_SPLIT_OFFSET = _U64((1 << 21) + (1 << 42) + (1 << 63))
_EXP52 = _U64(0x4330000000000000)  # bits of 2^52: (u | these).view(float) = 2^52 + u
_TWO52 = float(2**52)
_MAGIC = 1.5 * 2.0**52  # (v + magic).view(uint64) = magic bits + v, for |v| <= 2^51
_MAGIC_BITS = int(np.array(_MAGIC).view(_U64))
_MAGIC_SUM = _U64((_MAGIC_BITS + (_MAGIC_BITS << 22) + (_MAGIC_BITS << 43)) % 2**64)


# ---------------------------------------------------------------------------- costs


@dataclass(frozen=True)
class Costs:
    """Resources of a protocol run; see the module docstring for the convention."""

    local_ops: int = 0
    bytes_per_party: int = 0
    dealer_bytes: int = 0
    rounds: int = 0
    input_bytes: int = 0

    def __add__(self, other: Costs) -> Costs:
        """Sequential composition: every field adds up."""
        return Costs(
            self.local_ops + other.local_ops,
            self.bytes_per_party + other.bytes_per_party,
            self.dealer_bytes + other.dealer_bytes,
            self.rounds + other.rounds,
            self.input_bytes + other.input_bytes,
        )

    def parallel(self, other: Costs) -> Costs:
        """Composition in the same rounds: every field adds up except ``rounds`` (max)."""
        total = self + other
        return Costs(
            total.local_ops,
            total.bytes_per_party,
            total.dealer_bytes,
            max(self.rounds, other.rounds),
            total.input_bytes,
        )


# ---------------------------------------------------------------- sharing, encoding


@dataclass(frozen=True)
class Shared:
    """A secret shared between P0 and P1: ``value = s0 + s1 (mod 2^64)`` at scale ``frac``."""

    s0: np.ndarray
    s1: np.ndarray
    frac: int = FRAC_BITS

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the shared array."""
        return self.s0.shape

    @property
    def size(self) -> int:
        """Number of shared elements."""
        return int(self.s0.size)

    @property
    def T(self) -> Shared:  # noqa: N802 - numpy's name for the transpose
        """Transpose (local, free)."""
        return Shared(self.s0.T, self.s1.T, self.frac)


def encode(x, frac: int = FRAC_BITS) -> np.ndarray:
    """Fixed-point encoding: ``round(x * 2^frac)`` in two's complement, as uint64.

    Raises ``ValueError`` for non-finite values or ``|x| * 2^frac >= 2^63``.
    """
    v = np.rint(np.asarray(x, dtype=_F64) * 2.0**frac)
    if not np.all(np.isfinite(v)) or (v.size and np.max(np.abs(v)) >= 2.0**63):
        raise ValueError(
            f"value out of the fixed-point range: |x| must be below 2^{63 - frac} "
            f"at {frac} fractional bits, and finite"
        )
    return v.astype(np.int64).view(_U64)


def decode(v: np.ndarray, frac: int = FRAC_BITS) -> np.ndarray:
    """Inverse of :func:`encode`: read the ring element as signed and divide by 2^frac."""
    return np.asarray(v, dtype=_U64).view(np.int64) / 2.0**frac


def random_ring(shape, rng: np.random.Generator) -> np.ndarray:
    """Uniform elements of Z_2^64 drawn from ``rng``.

    Bit generators whose raw output is a uniform 64-bit word (PCG64, PCG64DXSM, SFC64,
    Philox) are read directly, which costs a few microseconds less per call than
    ``rng.integers``; others (e.g. MT19937, 32-bit words) go through ``rng.integers``.
    """
    if isinstance(rng.bit_generator, _RAW64):
        return rng.bit_generator.random_raw(shape)
    return rng.integers(0, 2**64 - 1, size=shape, dtype=_U64, endpoint=True)


def share(v: np.ndarray, rng: np.random.Generator, frac: int = FRAC_BITS) -> tuple[Shared, Costs]:
    """Additive sharing of ring elements by their owner: ``s0`` uniform, ``s1 = v - s0``."""
    v = np.asarray(v, dtype=_U64)
    s0 = random_ring(v.shape, rng)
    return Shared(s0, v - s0, frac), Costs(input_bytes=2 * ELEMENT_BYTES * v.size, rounds=1)


def share_float(x, rng: np.random.Generator, frac: int = FRAC_BITS) -> tuple[Shared, Costs]:
    """Encode real values at ``frac`` fractional bits and share them (:func:`share`)."""
    return share(encode(x, frac), rng, frac)


def reveal(x: Shared) -> tuple[np.ndarray, Costs]:
    """Open ``x`` to a receiver: each party sends its share (one round)."""
    return x.s0 + x.s1, Costs(local_ops=x.size, bytes_per_party=ELEMENT_BYTES * x.size, rounds=1)


def reveal_float(x: Shared) -> tuple[np.ndarray, Costs]:
    """Open ``x`` and decode it at its scale ``x.frac``."""
    v, costs = reveal(x)
    return decode(v, x.frac), costs


# ------------------------------------------------------------------ local operations


def _same_scale(x: Shared, y: Shared) -> None:
    if x.frac != y.frac:
        raise ValueError(f"scales differ: {x.frac} and {y.frac} fractional bits")
    if x.shape != y.shape:
        raise ValueError(f"shapes differ: {x.shape} and {y.shape}")


def add(x: Shared, y: Shared) -> tuple[Shared, Costs]:
    """``x + y``: each party adds its shares (local)."""
    _same_scale(x, y)
    return Shared(x.s0 + y.s0, x.s1 + y.s1, x.frac), Costs(local_ops=2 * x.size)


def sub(x: Shared, y: Shared) -> tuple[Shared, Costs]:
    """``x - y``: each party subtracts its shares (local)."""
    _same_scale(x, y)
    return Shared(x.s0 - y.s0, x.s1 - y.s1, x.frac), Costs(local_ops=2 * x.size)


def add_public(x: Shared, c) -> tuple[Shared, Costs]:
    """``x + c`` for a public real ``c`` (encoded at ``x.frac``): P0 adds it (local)."""
    return Shared(x.s0 + encode(c, x.frac), x.s1, x.frac), Costs(local_ops=x.size)


def truncate(x: Shared, bits: int) -> tuple[Shared, Costs]:
    """Local truncation by ``bits`` (SecureML, Mohassel & Zhang 2017, Sec. 3.1).

    P0 computes ``floor(x0 / 2^bits)``, P1 computes ``2^64 - floor((2^64 - x1) / 2^bits)``.
    The result is ``floor(x / 2^bits)`` or ``ceil(x / 2^bits)``, except with probability
    ``|x| / 2^64`` per element (:func:`truncation_failure_probability`), when it is off
    by about ``2^(64 - bits)``. The scale drops from ``x.frac`` to ``x.frac - bits``.
    """
    if not 0 <= bits <= x.frac:
        raise ValueError(f"cannot truncate {bits} bits from a value at scale {x.frac}")
    if bits == 0:
        return x, Costs()
    s = _U64(bits)
    t0 = x.s0 >> s
    t1 = -((-x.s1) >> s)
    return Shared(t0, t1, x.frac - bits), Costs(local_ops=4 * x.size)


def truncation_failure_probability(x_ring) -> np.ndarray:
    """Probability that :func:`truncate` fails on the ring integer ``x``: ``|x| / 2^64``.

    Derivation: with ``x0`` uniform, P1's share read as ``x1 - 2^64`` (or 0) sums with
    ``x0`` to ``x`` exactly unless ``0 <= x0 < x`` (for ``x >= 0``) or
    ``x0 >= 2^64 - |x|`` (for ``x < 0``). SecureML's Theorem 1 bounds it by
    ``2^(l_x + 1 - 64)`` for ``|x| < 2^l_x``.
    """
    return np.abs(np.asarray(x_ring, dtype=_F64)) / 2.0**RING_BITS


def mul_public(x: Shared, c: float) -> tuple[Shared, Costs]:
    """``x * c`` for a public real scalar ``c``, at the scale of ``x`` (local).

    ``c`` is encoded as the integer ``C = round(c * 2^p)`` with ``|C|`` in
    ``[2^15, 2^16]`` (16 significant bits; ``p >= 0``), the shares are multiplied by
    ``C`` and truncated by ``p``. The truncated ring value is about
    ``|x| * 2^(x.frac + 16)``, which sets the failure probability of that truncation.
    """
    c = float(c)
    if not math.isfinite(c):
        raise ValueError(f"public factor must be finite, got {c}")
    if c == 0.0:
        z = np.zeros_like(x.s0)
        return Shared(z, z.copy(), x.frac), Costs(local_ops=2 * x.size)
    p = max(0, 15 - math.floor(math.log2(abs(c))))
    C = _U64(int(round(c * 2.0**p)) % 2**64)
    scaled = Shared(x.s0 * C, x.s1 * C, x.frac + p)
    out, costs = truncate(scaled, p)
    return out, costs + Costs(local_ops=2 * x.size)


# -------------------------------------------------------- exact uint64 matrix product


def _split_into(a: np.ndarray, planes: np.ndarray) -> None:
    """Write the float64 limbs ``[d0, d2, d1, d0 + d1]`` of uint64 ``a`` into ``planes``.

    ``a`` is 2-D (any strides), ``planes`` has shape ``(4, *a.shape)``.
    ``a = d0 + 2^22 d1 + 2^43 d2 (mod 2^64)`` with ``d0`` in ``[-2^21, 2^21)`` and
    ``d1, d2`` in ``[-2^20, 2^20)``: the unsigned digits of ``a + 2^21 + 2^42 + 2^63``
    minus those offsets. Integers below 2^52 become floats by or-ing in the exponent
    of 2^52 and subtracting 2^52. Works in row blocks that stay in cache.
    """
    rows, cols = a.shape
    step = max(1, _SPLIT_BLOCK // max(cols, 1))
    t_buf = np.empty((min(step, rows), cols), dtype=_U64)
    u_buf = np.empty_like(t_buf)
    for r in range(0, rows, step):
        p = planes[:, r : r + step]
        t, u = t_buf[: p.shape[1]], u_buf[: p.shape[1]]
        np.add(a[r : r + step], _SPLIT_OFFSET, out=t)
        np.bitwise_and(t, _MASK22, out=u)
        np.bitwise_or(u, _EXP52, out=u)
        np.subtract(u.view(_F64), _TWO52 + 2.0**21, out=p[0])
        np.right_shift(t, _U64(22), out=u)
        np.bitwise_and(u, _MASK21, out=u)
        np.bitwise_or(u, _EXP52, out=u)
        np.subtract(u.view(_F64), _TWO52 + 2.0**20, out=p[2])
        np.right_shift(t, _U64(43), out=t)
        np.bitwise_or(t, _EXP52, out=t)
        np.subtract(t.view(_F64), _TWO52 + 2.0**20, out=p[1])
        np.add(p[0], p[2], out=p[3])


def _split(a: np.ndarray) -> np.ndarray:
    """Limb planes ``[d0, d2, d1, d0 + d1]`` of a 2-D uint64 array, shape ``(4, *a.shape)``."""
    out = np.empty((4, *a.shape))
    _split_into(a, out)
    return out


def _bias(K: int) -> np.uint64:
    """What :func:`_products_t` adds to every entry (the float-to-integer constants)."""
    return _U64(int(_MAGIC_SUM) * len(range(0, K, MAX_INNER)) % 2**64)


def _work_shape(n: int, m: int) -> tuple[int, int, int]:
    """Float scratch of :func:`_products_t`: five (n, width) planes, about 4 MB."""
    return (5, n, min(m, max(32, _PRODUCT_BLOCK // (40 * n))))


def _products_t(
    left_t: np.ndarray, right_t: np.ndarray, out_t: np.ndarray, work: np.ndarray | None = None
) -> np.ndarray:
    """``out_t = (A @ B)^T + _bias(K) (mod 2^64)`` from the limbs of ``A^T`` and ``B^T``.

    ``left_t``: (4, K, m) planes of ``A^T``; ``right_t``: (4, n, K) planes of ``B^T``;
    ``out_t``: (n, m) uint64; ``work``: scratch of shape :func:`_work_shape`. Computing
    the transpose lets one BLAS call read the large operand's ``d0`` plane for two
    products; columns go in blocks whose float scratch stays near 4 MB.
    """
    n, K = right_t.shape[1:]
    m = left_t.shape[2]
    if work is None:
        work = np.empty(_work_shape(n, m))
    width = work.shape[2]
    for c in range(0, m, width):
        cols = slice(c, c + width)
        if work.shape[2] != min(width, m - c):
            work = np.empty((5, n, m - c))
        m0, p02, p20, m2, r1 = work
        both = work[0:2].reshape(2 * n, -1)  # [M0 ; P02]
        o = out_t[:, cols]
        for s in range(0, K, MAX_INNER):
            L = left_t[:, s : s + MAX_INNER, cols]
            R = right_t[:, :, s : s + MAX_INNER]
            np.matmul(R[0:2].reshape(2 * n, -1), L[0], out=both)  # B0 A0 ; B2 A0
            np.matmul(R[0], L[1], out=p20)  # B0 A2
            np.matmul(R[2], L[2], out=m2)  # B1 A1
            np.matmul(R[3], L[3], out=r1)  # (B0 + B1)(A0 + A1)
            r1 -= m0  # A0 B1 + A1 B0                                         (offset 22)
            r1 -= m2
            p02 += p20  # A0 B2 + A2 B0 + 2 A1 B1                             (offset 43)
            p02 += m2
            p02 += m2
            for plane in (m0, r1, p02):
                plane += _MAGIC  # now plane.view(uint64) = magic bits + the integer
            u1 = r1.view(_U64)
            u1 <<= _U64(22)
            u2 = p02.view(_U64)
            u2 <<= _U64(43)
            if s == 0:
                np.add(m0.view(_U64), u1, out=o)
            else:
                o += m0.view(_U64)
                o += u1
            o += u2
    return out_t


def _direct(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b mod 2^64`` by numpy's own uint64 loops (fastest for 1 or 2 columns)."""
    if b.shape[1] == 1:
        return np.einsum("ij,j->i", a, b[:, 0])[:, None]
    return a @ b


def ring_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact ``a @ b mod 2^64`` of uint64 matrices.

    Through float64 BLAS on limbs (any inner dimension, in chunks of ``MAX_INNER``);
    products with at most ``THIN_COLUMNS`` columns use numpy's uint64 loops instead.
    Returns an (m, n) array (the limb path returns a transposed view).
    """
    a = np.asarray(a, dtype=_U64)
    b = np.asarray(b, dtype=_U64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"cannot multiply shapes {a.shape} and {b.shape}")
    if b.shape[1] <= THIN_COLUMNS:
        return _direct(a, b)
    out_t = np.empty((b.shape[1], a.shape[0]), dtype=_U64)
    _products_t(_split(a.T), _split(b.T), out_t)
    out_t -= _bias(a.shape[1])
    return out_t.T


# ------------------------------------------------------ Beaver elementwise products


def mul(x: Shared, y: Shared, rng: np.random.Generator) -> tuple[Shared, Costs]:
    """Elementwise ``x * y`` with a dealer triple ``c = a * b`` (Beaver 1991).

    The parties open ``e = x - a`` and ``f = y - b`` in one round and set
    ``z_i = c_i + e b_i + f a_i``, plus ``e f`` for P0. The result is at scale
    ``x.frac + y.frac``; ``rng`` drives the dealer.
    """
    if x.shape != y.shape:
        raise ValueError(f"shapes differ: {x.shape} and {y.shape}")
    n = x.size
    a, b, a0, b0, c0 = random_ring((5, *x.shape), rng)  # dealer: a, b and P0's shares
    a1, b1, c1 = a - a0, b - b0, a * b - c0
    e = (x.s0 - a0) + (x.s1 - a1)  # opened: each party sends x_i - a_i ...
    f = (y.s0 - b0) + (y.s1 - b1)  # ... and y_i - b_i
    z0 = c0 + e * b0 + f * a0 + e * f
    z1 = c1 + e * b1 + f * a1
    costs = Costs(
        local_ops=18 * n,
        bytes_per_party=2 * ELEMENT_BYTES * n,
        dealer_bytes=6 * ELEMENT_BYTES * n,
        rounds=1,
    )
    return Shared(z0, z1, x.frac + y.frac), costs


# ----------------------------------------------------------- Beaver matrix products


def _touched(shape, dtype=_F64) -> np.ndarray:
    """A buffer whose pages are already written (allocating them is offline work)."""
    return np.full(shape, 0, dtype=dtype)


@dataclass(eq=False)
class LeftMask:
    """Dealer's mask ``a`` for a left operand of shape (m, k), preprocessed by the parties.

    Offline material: the shares of ``a``; with ``limbs``, each party's float64 buffer
    ``(4, 2k, m)`` for the limbs of ``[e | a_i]^T``, whose lower half already holds the
    limbs of ``a_i^T`` (the upper half receives those of ``e^T``, ``e = x - a``,
    online); the dealer's own record of ``a``, used to make the products' triples. A
    mask is opened once: reusing it on another ``x`` would leak ``x - x'``.
    """

    a: Shared
    limbs_t: tuple[np.ndarray, np.ndarray] | None
    dealer_a: np.ndarray
    sent: np.ndarray  # (2, m, k) uint64: the parties' messages e_0, e_1 (then e)
    used: bool = False


@dataclass(frozen=True, eq=False)
class MaskedLeft:
    """A shared left operand ``x`` (m, k) opened as ``e = x - a``; reusable for products.

    ``limbs_t[i]`` (or None) is party i's ``(4, 2k, m)`` buffer of the limbs of
    ``[e | a_i]^T``; ``dealer_a`` is the dealer's record of the mask.
    """

    frac: int
    e: np.ndarray
    a: Shared
    limbs_t: tuple[np.ndarray, np.ndarray] | None
    dealer_a: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        """Shape (m, k) of the masked operand."""
        return self.e.shape

    @property
    def T(self) -> MaskedLeft:  # noqa: N802 - numpy's name for the transpose
        """The transposed operand, masked by ``a^T`` (local: no new opening)."""
        m, k = self.shape
        limbs_t = None
        if self.limbs_t is not None:
            limbs_t = tuple(
                np.concatenate([L[:, :k].transpose(0, 2, 1), L[:, k:].transpose(0, 2, 1)], 1)
                for L in self.limbs_t
            )
        T = np.ascontiguousarray
        return MaskedLeft(
            self.frac,
            T(self.e.T),
            Shared(T(self.a.s0.T), T(self.a.s1.T), 0),
            limbs_t,
            T(self.dealer_a.T),
        )


@dataclass(eq=False)
class RightTriple:
    """Dealer's ``b`` (k, n) and ``c = a @ b`` for one product with a masked left operand.

    Offline material: the shares of ``b`` and ``c``. For a wide product (limbs), also
    each party's float64 buffer ``(4, n, 2k)`` for the limbs of
    ``[b_i + [i=0] f ; f]^T`` (P1's first half, the limbs of ``b_1^T``, is filled
    offline), ``c_i^T`` less the conversion constant of the limb products, and the
    output buffers.
    """

    b: Shared
    c: Shared
    limbs_t: tuple[np.ndarray, np.ndarray] | None = None
    c_adjusted_t: tuple[np.ndarray, np.ndarray] | None = None
    out_t: tuple[np.ndarray, np.ndarray] | None = None
    work: np.ndarray | None = None  # float scratch of the limb products
    used: bool = False


def left_mask(
    m: int, k: int, rng: np.random.Generator, *, limbs: bool = True
) -> tuple[LeftMask, Costs]:
    """Offline: the dealer shares a uniform mask ``a`` (m, k); the parties split ``a_i``.

    ``limbs=False`` skips the limb buffers when every product with this operand will have
    at most ``THIN_COLUMNS`` columns (e.g. the matrix-vector products of training).
    """
    a = random_ring((m, k), rng)
    a_sh, _ = share(a, rng, 0)
    limbs_t = None
    if limbs:  # the limb products compute (x @ y)^T, from the limbs of x^T
        limbs_t = (_touched((4, 2 * k, m)), _touched((4, 2 * k, m)))
        for L, s in zip(limbs_t, (a_sh.s0, a_sh.s1), strict=True):
            _split_into(s.T, L[:, k:])
    mask = LeftMask(a_sh, limbs_t, a, _touched((2, m, k), _U64))
    return mask, Costs(dealer_bytes=2 * ELEMENT_BYTES * m * k)


def open_left(x: Shared, mask: LeftMask) -> tuple[MaskedLeft, Costs]:
    """Online: open ``e = x - a`` (one round); each party splits ``e`` into its buffer."""
    if mask.used:
        raise ValueError("this mask was already opened; a mask may be used only once")
    if x.shape != mask.a.shape:
        raise ValueError(f"mask shape {mask.a.shape} does not fit operand {x.shape}")
    mask.used = True
    m, k = x.shape
    e, e1 = mask.sent
    np.subtract(x.s0, mask.a.s0, out=e)  # P0 sends e_0 ...
    np.subtract(x.s1, mask.a.s1, out=e1)  # ... and P1 sends e_1
    e += e1  # (both parties compute e; one copy is kept, it is public)
    if mask.limbs_t is not None:
        for L in mask.limbs_t:  # each party splits e^T into its buffer
            _split_into(e.T, L[:, :k])
    opened = MaskedLeft(x.frac, e, mask.a, mask.limbs_t, mask.dealer_a)
    return opened, Costs(local_ops=4 * m * k, bytes_per_party=ELEMENT_BYTES * m * k, rounds=1)


def mask_left(
    x: Shared, rng: np.random.Generator, *, limbs: bool = True
) -> tuple[MaskedLeft, Costs]:
    """Mask and open a left operand once (:func:`left_mask` then :func:`open_left`)."""
    mask, offline = left_mask(*x.shape, rng, limbs=limbs)
    opened, online = open_left(x, mask)
    return opened, offline + online


def right_triple(
    ml: MaskedLeft | LeftMask, n: int, rng: np.random.Generator
) -> tuple[RightTriple, Costs]:
    """Offline: the dealer shares ``b`` (k, n) and ``c = a @ b``; P1 splits ``b_1``."""
    m, k = ml.dealer_a.shape
    b = random_ring((k, n), rng)
    b_sh, _ = share(b, rng, 0)
    c_sh, _ = share(ring_matmul(ml.dealer_a, b), rng, 0)
    triple = RightTriple(b_sh, c_sh)
    if ml.limbs_t is not None and n > THIN_COLUMNS:
        bias = _bias(2 * k)
        triple.limbs_t = (_touched((4, n, 2 * k)), _touched((4, n, 2 * k)))
        _split_into(b_sh.s1.T, triple.limbs_t[1][:, :, :k])
        triple.c_adjusted_t = tuple(np.ascontiguousarray((s - bias).T) for s in (c_sh.s0, c_sh.s1))
        triple.out_t = (_touched((n, m), _U64), _touched((n, m), _U64))
        triple.work = _touched(_work_shape(n, m))
    return triple, Costs(dealer_bytes=2 * ELEMENT_BYTES * (k * n + m * n))


def masked_matmul(ml: MaskedLeft, y: Shared, triple: RightTriple) -> tuple[Shared, Costs]:
    """Online ``x @ y`` for a masked ``x``: open ``f = y - b`` (one round), multiply locally.

    ``z_i = c_i + [e | a_i] @ [b_i + [i=0] f ; f]``, which sums to
    ``ab + (x - a) b + a (y - b) + (x - a)(y - b) = x y``. Scale ``ml.frac + y.frac``.
    Wide products run on limbs (shares returned as transposed views of (n, m) buffers),
    thin ones on numpy's uint64 loops.
    """
    if triple.used:
        raise ValueError("this triple was already used; a triple may be used only once")
    m, k = ml.shape
    if y.shape != triple.b.shape or y.shape[0] != k:
        raise ValueError(f"cannot multiply {ml.shape} by {y.shape} with this triple")
    triple.used = True
    n = y.shape[1]
    b, c = triple.b, triple.c
    f = y.s0 - b.s0  # P0 sends f_0 ...
    f1 = y.s1 - b.s1  # ... and P1 sends f_1
    f += f1
    if triple.limbs_t is None:
        z0 = _direct(ml.e, b.s0 + f)
        z0 += _direct(ml.a.s0, f)
        z0 += c.s0
        z1 = _direct(ml.e, b.s1)
        z1 += _direct(ml.a.s1, f)
        z1 += c.s1
        shares = [z0, z1]
    else:
        shares = []
        for i, (left_t, right_t) in enumerate(zip(ml.limbs_t, triple.limbs_t, strict=True)):
            if i == 0:
                _split_into(np.concatenate([(b.s0 + f).T, f.T], 1), right_t)
            else:
                _split_into(f.T, right_t[:, :, k:])
            z_t = _products_t(left_t, right_t, triple.out_t[i], triple.work)
            z_t += triple.c_adjusted_t[i]
            shares.append(z_t.T)
    costs = Costs(
        local_ops=8 * m * k * n + 5 * k * n + 4 * m * n,
        bytes_per_party=ELEMENT_BYTES * k * n,
        rounds=1,
    )
    return Shared(shares[0], shares[1], ml.frac + y.frac), costs


def matmul(x: Shared, y: Shared, rng: np.random.Generator) -> tuple[Shared, Costs]:
    """``x @ y`` with one matrix Beaver triple: ``e`` and ``f`` are opened in one round.

    Result at scale ``x.frac + y.frac``. ``rng`` drives the dealer.
    """
    if len(x.shape) != 2 or len(y.shape) != 2 or x.shape[1] != y.shape[0]:
        raise ValueError(f"cannot multiply shapes {x.shape} and {y.shape}")
    mask, c_mask = left_mask(*x.shape, rng, limbs=y.shape[1] > THIN_COLUMNS)
    triple, c_triple = right_triple(mask, y.shape[1], rng)
    opened, c_open = open_left(x, mask)
    z, c_mul = masked_matmul(opened, y, triple)
    return z, c_mask + c_triple + c_open.parallel(c_mul)


def secure_matmul(
    x, y, rng: np.random.Generator, *, frac: int = FRAC_BITS, truncate_product: bool = False
) -> tuple[np.ndarray, Costs]:
    """Share two float arrays, multiply them with a dealer triple, reveal the product.

    The owners of ``x`` (m, k) and ``y`` (k, n) (1-D allowed, as in numpy) share them at
    ``frac`` fractional bits; the parties run :func:`matmul`; the product is revealed at
    scale ``2 * frac`` (exact: error only from encoding the inputs, at most
    ``k (max|x| + max|y|) 2^-(frac+1) + k 2^-(2 frac + 2)``), or, with
    ``truncate_product``, truncated to ``frac`` on the shares first (one more unit of
    ``2^-frac``, and the truncation's failure probability) as a pipeline would.
    Requires ``max|x| * max|y| * k < 2^(62 - 2 frac)`` (checked by the owners, who see
    their own data). Costs: input sharing (1 round), the product (1 round), reveal
    (1 round).
    """
    x = np.asarray(x, dtype=_F64)
    y = np.asarray(y, dtype=_F64)
    if x.ndim not in (1, 2) or y.ndim not in (1, 2) or x.shape[-1] != y.shape[0]:
        raise ValueError(f"cannot multiply shapes {x.shape} and {y.shape}")
    X = x.reshape(1, -1) if x.ndim == 1 else x
    Y = y.reshape(-1, 1) if y.ndim == 1 else y
    k = X.shape[1]
    bound = (np.max(np.abs(X), initial=0.0) * np.max(np.abs(Y), initial=0.0)) * k
    if not bound < 2.0 ** (62 - 2 * frac):
        raise ValueError(
            f"product may leave the ring: max|x| * max|y| * k = {bound:.3g} must be below "
            f"2^{62 - 2 * frac}"
        )
    xs, c_x = share_float(X, rng, frac)
    ys, c_y = share_float(Y, rng, frac)
    z, costs = matmul(xs, ys, rng)
    costs = c_x.parallel(c_y) + costs
    if truncate_product:
        z, c_t = truncate(z, frac)
        costs = costs + c_t
    out, c_r = reveal_float(z)
    shape = X.shape[:1] * (x.ndim == 2) + Y.shape[1:] * (y.ndim == 2)  # numpy's rule
    return out.reshape(shape), costs + c_r


# ------------------------------------------------------------------------ sigmoid


def sigmoid_coefficients(bound: float = SIGMOID_BOUND, degree: int = SIGMOID_DEGREE) -> np.ndarray:
    """Odd power-basis coefficients ``[a1, a3, ...]`` of the sigmoid approximation.

    ``sigmoid(bound * v) ~ 1/2 + a1 v + a3 v^3 + ...`` on ``v in [-1, 1]``: the odd part
    of the Chebyshev interpolant of degree ``degree`` (Chebyshev points of the first
    kind; ``sigmoid - 1/2`` is odd, so the even coefficients vanish).
    """
    coef = _cheb.cheb2poly(
        _cheb.chebinterpolate(lambda v: 1.0 / (1.0 + np.exp(-bound * v)), degree)
    )
    return coef[1::2].copy()


_SIGMOID_ODD = sigmoid_coefficients()


def sigmoid_poly(x) -> np.ndarray:
    """The plaintext sigmoid approximation the secure :func:`sigmoid` evaluates.

    Error at most ``SIGMOID_MAX_ERROR`` on ``[-SIGMOID_BOUND, SIGMOID_BOUND]``.
    """
    v = np.asarray(x, dtype=_F64) / SIGMOID_BOUND
    t = v * v
    h = np.zeros_like(v)
    for a in _SIGMOID_ODD[::-1]:
        h = h * t + a
    return 0.5 + v * h


def _mul_trunc(x: Shared, y: Shared, rng: np.random.Generator) -> tuple[Shared, Costs]:
    z, c1 = mul(x, y, rng)
    z, c2 = truncate(z, y.frac)
    return z, c1 + c2


def sigmoid(x: Shared, rng: np.random.Generator) -> tuple[Shared, Costs]:
    """Secure sigmoid by the polynomial of :func:`sigmoid_poly` (5 rounds, 5 products).

    ``v = x / 8``, ``t = v^2``, ``h = a9``; ``h = h t + a7, ..., h t + a1`` (Horner);
    ``out = 1/2 + v h``. Every product is truncated back to ``x.frac``.
    """
    v, costs = mul_public(x, 1.0 / SIGMOID_BOUND)
    t, c = _mul_trunc(v, v, rng)
    costs += c
    top, *middle, a1 = _SIGMOID_ODD[::-1]  # a9, [a7, a5, a3], a1
    h, c = mul_public(t, top)
    costs += c
    for a in middle:
        h, c1 = add_public(h, a)
        h, c2 = _mul_trunc(h, t, rng)
        costs += c1 + c2
    h, c1 = add_public(h, a1)
    h, c2 = _mul_trunc(h, v, rng)
    out, c3 = add_public(h, 0.5)
    return out, costs + c1 + c2 + c3


# ------------------------------------------------------------------ secure training


def ridge_closed_form(X: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    """Minimizer of ``||X w - y||^2 / (2n) + lam ||w||^2 / 2``: ``(X'X/n + lam I)^-1 X'y/n``."""
    n, d = X.shape
    return np.linalg.solve(X.T @ X / n + lam * np.eye(d), X.T @ y / n)


def _gd(X, y, lam, epochs, lr, link) -> np.ndarray:
    n, d = X.shape
    w = np.zeros(d)
    for _ in range(epochs):
        r = link(X @ w) - y
        w = w * (1.0 - lr * lam) - (lr / n) * (X.T @ r)
    return w


def ridge_gd(X: np.ndarray, y: np.ndarray, lam: float, *, epochs: int, lr: float) -> np.ndarray:
    """Plaintext full-batch gradient descent on the ridge objective, from ``w = 0``.

    ``w <- w (1 - lr lam) - (lr / n) X' (X w - y)``: the gradient of
    ``||X w - y||^2 / (2n) + lam ||w||^2 / 2`` (Hoerl & Kennard 1970; the penalty
    ``lam * n`` on ``||X w - y||^2`` as in ``agents.forecaster.fit_ridge``).
    """
    return _gd(np.asarray(X, _F64), np.asarray(y, _F64), lam, epochs, lr, lambda u: u)


def logistic_gd(
    X: np.ndarray,
    y: np.ndarray,
    lam: float,
    *,
    epochs: int,
    lr: float,
    link: Callable[[np.ndarray], np.ndarray] = sigmoid_poly,
) -> np.ndarray:
    """Plaintext gradient descent on the mean log-loss plus ``lam ||w||^2 / 2``, from 0.

    ``w <- w (1 - lr lam) - (lr / n) X' (link(X w) - y)``, labels in {0, 1}. ``link``
    is the secure protocol's :func:`sigmoid_poly` by default; pass the exact sigmoid to
    compare with ordinary logistic regression.
    """
    return _gd(np.asarray(X, _F64), np.asarray(y, _F64), lam, epochs, lr, link)


def _secure_gd(features_by_provider, y, lam, rng, epochs, lr, frac, link):
    blocks = [np.asarray(b, dtype=_F64) for b in features_by_provider]
    if not blocks or any(b.ndim != 2 for b in blocks):
        raise ValueError("features_by_provider must be a non-empty list of 2-D arrays")
    n = blocks[0].shape[0]
    y = np.asarray(y, dtype=_F64)
    if any(b.shape[0] != n for b in blocks) or y.shape != (n,):
        raise ValueError(
            f"every provider's block and y need the same number of rows; got "
            f"{[b.shape for b in blocks]} and y {y.shape}"
        )
    if epochs < 0 or not lr > 0 or not lam >= 0:
        raise ValueError(f"need epochs >= 0, lr > 0, lam >= 0; got {epochs}, {lr}, {lam}")
    # Each provider shares its columns, the label owner its labels, all in one round.
    costs = Costs()
    parts = []
    for b in blocks:
        sh, c = share_float(b, rng, frac)
        parts.append(sh)
        costs = costs.parallel(c)
    ys, c = share_float(y.reshape(n, 1), rng, frac)
    costs = costs.parallel(c)
    X = Shared(np.hstack([p.s0 for p in parts]), np.hstack([p.s1 for p in parts]), frac)
    d = X.shape[1]
    # Open X - A once; its transpose reuses the same mask (SecureML Sec. 4.1).
    mx, c = mask_left(X, rng, limbs=False)
    mxt = mx.T
    costs += c
    w = Shared(np.zeros((d, 1), _U64), np.zeros((d, 1), _U64), frac)
    keep, step = 1.0 - lr * lam, lr / n
    for _ in range(epochs):
        tri, c0 = right_triple(mx, 1, rng)
        u, c1 = masked_matmul(mx, w, tri)
        u, c2 = truncate(u, frac)
        costs += c0 + c1 + c2
        if link is not None:
            u, c = link(u, rng)
            costs += c
        r, c = sub(u, ys)
        tri, c0 = right_triple(mxt, 1, rng)
        g, c1 = masked_matmul(mxt, r, tri)
        g, c2 = truncate(g, frac)
        g, c3 = mul_public(g, step)
        w, c4 = mul_public(w, keep) if keep != 1.0 else (w, Costs())
        w, c5 = sub(w, g)
        costs += c + c0 + c1 + c2 + c3 + c4 + c5
    weights, c = reveal_float(w)
    return weights.ravel(), costs + c


def secure_ridge(
    features_by_provider: list[np.ndarray],
    y: np.ndarray,
    lam: float,
    rng: np.random.Generator,
    *,
    epochs: int = 100,
    lr: float = 0.1,
    frac: int = FRAC_BITS,
) -> tuple[np.ndarray, Costs]:
    """Ridge regression by gradient descent on secret-shared features; reveal only ``w``.

    Each provider secret-shares its block of columns (same rows, same order), the label
    owner shares ``y``; the parties mask the data matrix once, then run :func:`ridge_gd`'s
    update on shares for ``epochs`` epochs (two masked matrix-vector products and
    truncations per epoch, 2 rounds) and reveal the weights to the developer. Returns
    ``(weights (d,), costs)``. Add a column of ones to one block to fit an intercept.
    """
    return _secure_gd(features_by_provider, y, lam, rng, epochs, lr, frac, None)


def secure_logistic(
    features_by_provider: list[np.ndarray],
    y: np.ndarray,
    lam: float,
    rng: np.random.Generator,
    *,
    epochs: int = 100,
    lr: float = 0.1,
    frac: int = FRAC_BITS,
) -> tuple[np.ndarray, Costs]:
    """Logistic regression by gradient descent on secret-shared features (labels 0/1).

    As :func:`secure_ridge`, with the secure :func:`sigmoid` applied to ``X w`` (7
    rounds per epoch); matches :func:`logistic_gd` with ``link=sigmoid_poly``. The
    approximation holds while ``|X w| <= SIGMOID_BOUND``.
    """
    return _secure_gd(features_by_provider, y, lam, rng, epochs, lr, frac, sigmoid)


# ------------------------------------------------- costs from shapes (the cost model)


def _mul_public_costs(size: int, c: float) -> Costs:
    """The counts :func:`mul_public` reports for ``size`` elements and factor ``c``."""
    c = float(c)
    if c == 0.0:
        return Costs(local_ops=2 * size)
    p = max(0, 15 - math.floor(math.log2(abs(c))))
    return Costs(local_ops=(6 if p > 0 else 2) * size)


def _sigmoid_costs(n: int) -> Costs:
    """The counts :func:`sigmoid` reports for ``n`` elements."""
    mul_trunc = Costs(
        local_ops=22 * n, bytes_per_party=16 * n, dealer_bytes=48 * n, rounds=1
    )  # mul (18n) + truncate (4n)
    top, *middle, _ = _SIGMOID_ODD[::-1]
    costs = _mul_public_costs(n, 1.0 / SIGMOID_BOUND) + mul_trunc + _mul_public_costs(n, top)
    for _ in middle:
        costs += Costs(local_ops=n) + mul_trunc
    return costs + Costs(local_ops=n) + mul_trunc + Costs(local_ops=n)


def training_costs(
    rows: int,
    features: int,
    *,
    epochs: int,
    lr: float,
    lam: float,
    logistic: bool = False,
) -> Costs:
    """The :class:`Costs` that :func:`secure_ridge` (or :func:`secure_logistic`) reports.

    Computed from the shapes alone, without running the protocol: input sharing
    ``16 n (d + 1)`` bytes in 1 round; masking ``X`` (dealer ``16 n d``; ``4 n d`` ops,
    ``8 n d`` bytes, 1 round); per epoch two masked matrix-vector products
    (``8 n d + 5 d + 4 n`` and ``8 d n + 5 n + 4 d`` ops, ``8 d`` and ``8 n`` bytes,
    dealer ``16 (n + d)`` each, 1 round each), their truncations (``4 n``, ``4 d``),
    the residual (``2 n``), the public products and the update (see the table in the
    module docstring), plus the sigmoid for logistic regression (5 rounds); the reveal of
    ``w`` (``d`` ops, ``8 d`` bytes, 1 round). The number of providers does not matter:
    they share in parallel. Equal to the measured counts (tested).
    """
    n, d = int(rows), int(features)
    if n < 1 or d < 1 or epochs < 0:
        raise ValueError(f"need rows >= 1, features >= 1, epochs >= 0; got {n}, {d}, {epochs}")
    costs = Costs(input_bytes=16 * n * (d + 1), rounds=1)
    costs += Costs(dealer_bytes=16 * n * d) + Costs(
        local_ops=4 * n * d, bytes_per_party=8 * n * d, rounds=1
    )
    keep, step = 1.0 - lr * lam, lr / n
    epoch = (
        Costs(dealer_bytes=16 * (d + n))
        + Costs(local_ops=8 * n * d + 5 * d + 4 * n, bytes_per_party=8 * d, rounds=1)
        + Costs(local_ops=4 * n)
    )
    if logistic:
        epoch += _sigmoid_costs(n)
    epoch += (
        Costs(local_ops=2 * n)
        + Costs(dealer_bytes=16 * (n + d))
        + Costs(local_ops=8 * d * n + 5 * n + 4 * d, bytes_per_party=8 * n, rounds=1)
        + Costs(local_ops=4 * d)
        + _mul_public_costs(d, step)
        + (_mul_public_costs(d, keep) if keep != 1.0 else Costs())
        + Costs(local_ops=2 * d)
    )
    total = Costs(
        epoch.local_ops * epochs,
        epoch.bytes_per_party * epochs,
        epoch.dealer_bytes * epochs,
        epoch.rounds * epochs,
        epoch.input_bytes * epochs,
    )
    return costs + total + Costs(local_ops=d, bytes_per_party=8 * d, rounds=1)


def secure_predict(
    features_by_provider: list[np.ndarray],
    weights: np.ndarray,
    rng: np.random.Generator,
    *,
    frac: int = FRAC_BITS,
) -> tuple[np.ndarray, Costs]:
    """Secure linear inference: the providers share this round's feature blocks, the
    developer its weights; one Beaver product, truncated, revealed to the developer.

    ``X = [X_1 | ... | X_P]`` (m, d), ``w`` (d,); returns ``(X w (m,), costs)``, the
    costs of :func:`secure_matmul` with ``truncate_product=True`` (equal to
    :func:`inference_costs`).
    """
    X = np.hstack([np.asarray(b, dtype=_F64) for b in features_by_provider])
    return secure_matmul(X, np.asarray(weights, dtype=_F64), rng, frac=frac, truncate_product=True)


def inference_costs(rows: int, features: int) -> Costs:
    """The :class:`Costs` of :func:`secure_predict` for ``rows`` samples, ``features`` weights.

    Sharing ``16 (m d + d)`` bytes (1 round); the matrix triple (dealer
    ``16 (m d + d + m)``); opening ``e`` and ``f`` in one round (``4 m d`` and
    ``8 m d + 5 d + 4 m`` ops, ``8 (m d + d)`` bytes); truncation (``4 m``); the reveal
    (``m`` ops, ``8 m`` bytes, 1 round).
    """
    m, d = int(rows), int(features)
    return Costs(
        local_ops=4 * m * d + 8 * m * d + 5 * d + 4 * m + 4 * m + m,
        bytes_per_party=8 * (m * d + d) + 8 * m,
        dealer_bytes=16 * (m * d + d + m),
        rounds=3,
        input_bytes=16 * (m * d + d),
    )
