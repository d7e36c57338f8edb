"""Paillier homomorphic encryption with ``g = n + 1``: keys, fixed-point values, packing.

Mathematics (Paillier, "Public-Key Cryptosystems Based on Composite Degree Residuosity
Classes", EUROCRYPT 1999, LNCS 1592, pp. 223-238):

- Keys: ``n = p q`` with ``p, q`` primes of equal size and ``gcd(pq, (p-1)(q-1)) = 1``.
  The public key is ``n`` (``g = n + 1``), the private key is ``(p, q)``.
- Encryption of ``m`` in ``Z_n``: ``c = g^m r^n mod n^2`` with ``r`` uniform in
  ``Z*_n``. With ``g = n + 1`` the binomial theorem gives ``g^m = 1 + m n (mod n^2)``,
  so only the obfuscator ``r^n`` costs a modular exponentiation.
- Decryption by Chinese remaindering (the paper's section 7, as python-paillier's
  ``raw_decrypt`` does): ``m_p = L_p(c^(p-1) mod p^2) h_p mod p`` with
  ``L_p(x) = (x - 1) / p`` and ``h_p = L_p(g^(p-1) mod p^2)^(-1) mod p``; likewise
  ``m_q``; then ``m = m_q + q ((m_p - m_q) q^(-1) mod p)``.
- Homomorphism: ``D(c1 c2 mod n^2) = m1 + m2``, ``D(c^k mod n^2) = k m``,
  ``D(c (1 + m2 n) mod n^2) = m1 + m2`` (all mod ``n``); ``c^(-1)`` encrypts ``-m``.

Values. Integers are read modulo ``n`` and centred: a plaintext above ``(n - 1) / 2``
is negative, so the signed range is ``|m| <= (n - 1) / 2`` (``PublicKey.max_int``).
A real ``x`` is carried in fixed point as ``round(x 2^f)`` with ``f`` fractional bits
(``Ciphertext.frac_bits``); multiplying by a fixed-point scalar of ``g`` fractional
bits adds ``g`` to ``f``, and adding two ciphertexts first brings the one with fewer
fractional bits up (an exact multiplication by ``2^d``). Overflow past ``max_int`` is
not detected on single ciphertexts (the wrap-around is silent, as in python-paillier
between its ``max_int`` and ``n - max_int``); packed vectors track their bound.

Packing (:class:`Packing`): ``k`` slots of ``b = value_bits + headroom_bits`` bits in
one plaintext, slot ``i`` at bits ``[i b, (i + 1) b)``, ``k b <= bits(n) - 2``. A
signed value ``v`` with ``|v| < 2^(value_bits-1)`` is stored as ``v + 2^(value_bits-1)``.
A linear combination ``sum_j w_j V_j`` of packed vectors (integer weights) is tracked by
``W = sum w_j`` (the number of offsets each slot holds) and ``A = sum |w_j|`` (its
magnitude); every slot stays exact while ``A <= 2^headroom_bits`` (the headroom rule: a
sum of ``2^h`` vectors needs ``h`` headroom bits; :func:`headroom_for`; it is tight
when ``value_bits > headroom_bits``), and an operation that would break it raises
``OverflowError`` before any work is done.

Randomness: ``r`` comes from ``secrets`` unless a numpy ``Generator`` (or a seed) is
given, which makes keys and ciphertexts reproducible for simulation but is not secure:
real keys and ciphertexts need a CSPRNG. :class:`RandomnessPool` computes obfuscators
ahead of time, either plain ``r^n`` or the Damgård-Jurik-Nielsen fixed-base form.

Interoperability with python-paillier (``phe``): it uses the same ``g = n + 1``, so
``phe.PaillierPublicKey(n)`` and ``phe.PaillierPrivateKey(pub, p, q)`` accept these
keys' numbers, and raw ciphertexts (``Ciphertext.c``, ``phe``'s ``raw_encrypt`` and
``EncryptedNumber.ciphertext()``) decrypt on either side. ``phe`` encodes integers with
exponent 0 the same way; its floats use base-16 exponents, not this module's binary
fixed point.

Arithmetic uses ``gmpy2`` (``mpz``, ``powmod``, ``invert``) when it is installed and
Python integers otherwise; every key remembers the :class:`Backend` it was built with.
"""

from __future__ import annotations

import math
import numbers
import operator
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "BACKEND",
    "DEFAULT_FRAC_BITS",
    "GMPY2",
    "MILLER_RABIN_ROUNDS",
    "PYTHON",
    "Backend",
    "Ciphertext",
    "PackedVector",
    "Packing",
    "PrivateKey",
    "PublicKey",
    "RandomnessPool",
    "aggregate",
    "decode_fixed",
    "encode_fixed",
    "encrypt_vector",
    "encrypted_dot",
    "headroom_for",
    "is_probable_prime",
    "keygen",
]

#: Fractional bits used for floats when none are given (relative precision ``2^-32``).
DEFAULT_FRAC_BITS = 32
#: Miller-Rabin rounds: a composite passes all of them with probability at most
#: ``4^-64 = 2^-128`` (Rabin 1980), whatever the distribution of candidates.
MILLER_RABIN_ROUNDS = 64
#: Smallest modulus ``keygen`` makes; real keys need at least 2048 bits (NIST SP 800-57).
MIN_KEY_BITS = 32


# --------------------------------------------------------------------------- backends


@dataclass(frozen=True)
class Backend:
    """Big-integer arithmetic: ``mpz`` (conversion), ``powmod``, ``invert``, ``gcd``."""

    name: str
    mpz: Callable[[int], int]
    powmod: Callable[[int, int, int], int]
    invert: Callable[[int, int], int]
    gcd: Callable[[int, int], int]


def _py_invert(a: int, m: int) -> int:
    return pow(a, -1, m)


#: Plain Python integers (always available).
PYTHON = Backend("python", int, pow, _py_invert, math.gcd)

try:  # pragma: no cover - depends on the environment
    import gmpy2 as _gmpy2
except ImportError:  # pragma: no cover
    GMPY2: Backend | None = None
else:
    #: GMP through gmpy2, or ``None`` when gmpy2 is not installed.
    GMPY2 = Backend("gmpy2", _gmpy2.mpz, _gmpy2.powmod, _gmpy2.invert, _gmpy2.gcd)

#: The backend new keys use unless told otherwise: gmpy2 when installed.
BACKEND: Backend = GMPY2 if GMPY2 is not None else PYTHON


def _resolve_backend(backend: Backend | str | None) -> Backend:
    if backend is None:
        return BACKEND
    if isinstance(backend, Backend):
        return backend
    if backend == "python":
        return PYTHON
    if backend == "gmpy2":
        if GMPY2 is None:
            raise ValueError("backend 'gmpy2' requested but gmpy2 is not installed")
        return GMPY2
    raise ValueError(f"unknown backend {backend!r}; allowed: 'gmpy2', 'python' or None")


# --------------------------------------------------------------------------- randomness

RngLike = np.random.Generator | int | None


def _as_rng(rng: RngLike) -> np.random.Generator | None:
    """``None`` (use ``secrets``), a numpy ``Generator``, or an integer seed."""
    if rng is None or isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be None, a numpy Generator or an int seed, not {type(rng)}")


def _randbelow(bound: int, rng: np.random.Generator | None) -> int:
    """Uniform integer in ``[0, bound)`` by rejection from ``bits(bound)`` random bits."""
    if rng is None:
        return secrets.randbelow(bound)
    k = bound.bit_length()
    nbytes = (k + 7) // 8
    while True:
        x = int.from_bytes(rng.bytes(nbytes), "little") >> (8 * nbytes - k)
        if x < bound:
            return x


def _randbits(k: int, rng: np.random.Generator | None) -> int:
    if rng is None:
        return secrets.randbits(k)
    nbytes = (k + 7) // 8
    return int.from_bytes(rng.bytes(nbytes), "little") >> (8 * nbytes - k)


def _random_unit(n: int, rng: np.random.Generator | None) -> int:
    """Uniform ``r`` in ``Z*_n`` (``1 <= r < n``, ``gcd(r, n) = 1``)."""
    while True:
        r = _randbelow(n, rng)
        if r > 0 and math.gcd(r, n) == 1:
            return r


# --------------------------------------------------------------------------- primes

_SMALL_PRIMES = [p for p in range(3, 2000, 2) if all(p % d for d in range(3, math.isqrt(p) + 1))]
_SMALL_PRODUCT = math.prod(_SMALL_PRIMES)


def is_probable_prime(
    x: int,
    rounds: int = MILLER_RABIN_ROUNDS,
    rng: RngLike = None,
    backend: Backend | str | None = None,
) -> bool:
    """Miller-Rabin test with ``rounds`` random bases (after trial division).

    Write ``x - 1 = 2^s d`` with ``d`` odd; a base ``a`` witnesses compositeness unless
    ``a^d = 1`` or ``a^(2^j d) = -1 (mod x)`` for some ``j < s``. A composite survives
    one random base with probability at most 1/4, so ``rounds`` bases bound the error by
    ``4^-rounds`` (Rabin, "Probabilistic algorithm for testing primality", J. Number
    Theory 12, 1980); for random candidates the error is far smaller (Damgård,
    Landrock and Pomerance, Math. Comp. 61, 1993). Bases come from ``rng`` (numpy
    ``Generator`` or seed, deterministic) or ``secrets``.
    """
    if x < 2:
        return False
    if x < 4:
        return True
    if x % 2 == 0:
        return False
    if x < 2000:
        return x in _SMALL_PRIMES
    if math.gcd(x, _SMALL_PRODUCT) != 1:
        return False
    be = _resolve_backend(backend)
    gen = _as_rng(rng)
    xm = be.mpz(x)
    d, s = x - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    for _ in range(rounds):
        a = 2 + _randbelow(x - 3, gen)  # a in [2, x - 2]
        y = be.powmod(be.mpz(a), d, xm)
        if y == 1 or y == x - 1:
            continue
        for _ in range(s - 1):
            y = y * y % xm
            if y == x - 1:
                break
        else:
            return False
    return True


def _random_prime(bits: int, rng: np.random.Generator | None, be: Backend) -> int:
    """A random ``bits``-bit prime with its two top bits set (so products of two have
    exactly ``2 bits`` bits)."""
    top = 3 << (bits - 2)
    while True:
        x = _randbits(bits, rng) | top | 1
        if is_probable_prime(x, MILLER_RABIN_ROUNDS, rng, be):
            return x


# --------------------------------------------------------------------------- fixed point


def encode_fixed(x: float, frac_bits: int) -> int:
    """Fixed-point integer of ``x``: ``round(x 2^frac_bits)`` (round half to even)."""
    if isinstance(x, numbers.Integral):
        return int(x) << frac_bits
    xf = float(x)
    if not math.isfinite(xf):
        raise ValueError(f"cannot encode {x!r}: only finite values have a fixed-point form")
    return round(math.ldexp(xf, frac_bits))


def decode_fixed(m: int, frac_bits: int) -> float:
    """Float of the fixed-point integer ``m``: ``m / 2^frac_bits`` (correctly rounded)."""
    return int(m) / (1 << frac_bits)


def _as_int(k: object, what: str) -> int:
    try:
        return operator.index(k)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{what} must be an integer, not {type(k).__name__}") from None


# --------------------------------------------------------------------------- keys


class PublicKey:
    """Paillier public key ``n`` (with ``g = n + 1``).

    ``PublicKey(n)`` accepts any ``n``, e.g. one from ``phe.PaillierPublicKey.n``.
    ``encrypt(m)`` returns ``Enc(m) = (1 + m n) r^n mod n^2`` for a signed integer
    ``|m| <= max_int = (n - 1) / 2``; ``encrypt_float(x, f)`` encrypts
    ``round(x 2^f)`` with ``f`` fractional bits.
    """

    __slots__ = ("_n", "_nsq", "backend", "bits", "max_int", "n", "nsquare")

    def __init__(self, n: int, backend: Backend | str | None = None):
        n = _as_int(n, "n")
        if n < 15 or n % 2 == 0:
            raise ValueError(f"n must be an odd modulus >= 15, got {n}")
        self.backend = _resolve_backend(backend)
        self.n = n
        self.nsquare = n * n
        self.bits = n.bit_length()
        self.max_int = (n - 1) // 2
        self._n = self.backend.mpz(n)
        self._nsq = self.backend.mpz(self.nsquare)

    def __repr__(self) -> str:
        return f"PublicKey(bits={self.bits}, n={hex(self.n)[:18]}...)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PublicKey) and other.n == self.n

    def __hash__(self) -> int:
        return hash(self.n)

    # -- encryption
    def _plain(self, m: int) -> int:
        """Signed integer -> residue mod n, with a range check."""
        if not -self.max_int <= m <= self.max_int:
            raise ValueError(
                f"plaintext {m} is outside the signed range [-{self.max_int}, {self.max_int}]"
                f" of a {self.bits}-bit key"
            )
        return m % self.n

    def obfuscator(self, rng: RngLike = None) -> int:
        """A fresh ``r^n mod n^2`` with ``r`` uniform in ``Z*_n`` (one modexp)."""
        r = _random_unit(self.n, _as_rng(rng))
        return self.backend.powmod(self.backend.mpz(r), self._n, self._nsq)

    def _rn(self, rng: RngLike, pool: RandomnessPool | None) -> int:
        if pool is None:
            return self.obfuscator(rng)
        if rng is not None:
            raise ValueError("give either rng or pool, not both: a pool carries its own rng")
        if pool.public_key != self:
            raise ValueError("the randomness pool belongs to another public key")
        return pool.take()

    def _encrypt_residue(self, m: int, rn: int) -> int:
        # g^m = (1 + n)^m = 1 + m n (mod n^2); 1 + m n < n^2 for 0 <= m < n
        return (1 + self._n * m) * rn % self._nsq

    def encrypt(
        self, m: int, *, rng: RngLike = None, pool: RandomnessPool | None = None
    ) -> Ciphertext:
        """``Enc(m)`` of a signed integer; randomness from ``rng``/``secrets`` or ``pool``."""
        if isinstance(m, numbers.Real) and not isinstance(m, numbers.Integral):
            raise TypeError(f"encrypt takes an integer, got {m!r}; use encrypt_float for reals")
        res = self._plain(_as_int(m, "plaintext"))
        return Ciphertext._new(self, self._encrypt_residue(res, self._rn(rng, pool)), 0)

    def encrypt_float(
        self,
        x: float,
        frac_bits: int = DEFAULT_FRAC_BITS,
        *,
        rng: RngLike = None,
        pool: RandomnessPool | None = None,
    ) -> Ciphertext:
        """``Enc(round(x 2^frac_bits))``, a ciphertext with ``frac_bits`` fractional bits."""
        res = self._plain(encode_fixed(x, frac_bits))
        return Ciphertext._new(self, self._encrypt_residue(res, self._rn(rng, pool)), frac_bits)

    def rerandomize(
        self, ct: Ciphertext, *, rng: RngLike = None, pool: RandomnessPool | None = None
    ) -> Ciphertext:
        """``ct Enc(0)``: same plaintext, fresh randomness.

        Results of homomorphic operations carry randomness that is a function of their
        inputs' (e.g. ``r^k`` after a scalar product); re-randomize before handing a
        result to anyone who knows the inputs' randomness or the private key.
        """
        self._check(ct)
        return Ciphertext._new(self, ct._c * self._rn(rng, pool) % self._nsq, ct.frac_bits)

    def _check(self, ct: Ciphertext) -> None:
        if ct.public_key != self:
            raise ValueError("the ciphertext was made under another public key")

    def _check_vector(self, vec: PackedVector) -> None:
        if vec.public_key != self:
            raise ValueError("the packed vector was made under another public key")


class PrivateKey:
    """Paillier private key ``(p, q)`` of ``public_key`` (``p q = n``, ``p != q``).

    Decrypts by Chinese remaindering (Paillier 1999, section 7): two exponentiations
    modulo ``p^2`` and ``q^2`` with exponents ``p - 1``, ``q - 1`` instead of one modulo
    ``n^2`` with exponent ``lambda``; python-paillier's ``raw_decrypt`` does the same.
    """

    __slots__ = ("_hp", "_hq", "_p", "_psq", "_q", "_qinv", "_qsq", "p", "public_key", "q")

    def __init__(self, public_key: PublicKey, p: int, q: int):
        p, q = _as_int(p, "p"), _as_int(q, "q")
        if p * q != public_key.n:
            raise ValueError("p * q does not equal the public key's n")
        if p == q:
            raise ValueError("p and q must differ")
        self.public_key = public_key
        self.p, self.q = p, q
        be = public_key.backend
        self._p, self._q = be.mpz(p), be.mpz(q)
        self._psq, self._qsq = be.mpz(p * p), be.mpz(q * q)
        self._hp = self._h(self._p, self._psq)
        self._hq = self._h(self._q, self._qsq)
        self._qinv = be.invert(self._q, self._p)

    def _h(self, x: int, xsq: int) -> int:
        """``h_x = L_x(g^(x-1) mod x^2)^(-1) mod x`` with ``g = n + 1``."""
        be = self.public_key.backend
        gx = be.powmod(self.public_key._n + 1, x - 1, xsq)
        return be.invert((gx - 1) // x, x)

    def __repr__(self) -> str:
        return f"PrivateKey(bits={self.public_key.bits})"

    def raw_decrypt(self, c: int) -> int:
        """Plaintext residue in ``[0, n)`` of a raw ciphertext integer ``c``."""
        be = self.public_key.backend
        c = be.mpz(c)
        mp = (be.powmod(c % self._psq, self._p - 1, self._psq) - 1) // self._p * self._hp % self._p
        mq = (be.powmod(c % self._qsq, self._q - 1, self._qsq) - 1) // self._q * self._hq % self._q
        return int(mq + self._q * ((mp - mq) * self._qinv % self._p))

    def decrypt(self, ct: Ciphertext) -> int:
        """The signed integer plaintext of ``ct`` (its fixed-point integer, if any)."""
        self.public_key._check(ct)
        m = self.raw_decrypt(ct._c)
        return m - self.public_key.n if m > self.public_key.max_int else m

    def decrypt_float(self, ct: Ciphertext) -> float:
        """``decrypt(ct) / 2^ct.frac_bits``."""
        return decode_fixed(self.decrypt(ct), ct.frac_bits)

    def decrypt_vector_ints(self, vec: PackedVector) -> list[int]:
        """The fixed-point integers of a packed vector, exactly."""
        self.public_key._check_vector(vec)
        out: list[int] = []
        for ct, count in zip(vec.ciphertexts, vec.chunk_counts(), strict=True):
            out.extend(
                vec.packing.unpack(
                    self.raw_decrypt(ct._c), count, vec.weight, vec.magnitude, self.public_key.n
                )
            )
        return out

    def decrypt_vector(self, vec: PackedVector) -> np.ndarray:
        """The values of a packed vector as floats: integers ``/ 2^vec.frac_bits``."""
        return np.array(
            [decode_fixed(v, vec.frac_bits) for v in self.decrypt_vector_ints(vec)], dtype=float
        )


def keygen(
    bits: int, rng: RngLike = None, *, backend: Backend | str | None = None
) -> tuple[PublicKey, PrivateKey]:
    """A Paillier key pair with ``n`` of exactly ``bits`` bits.

    ``p`` and q are random primes of ``bits / 2`` bits each with their two top bits set
    (so ``n >= 9 * 2^(bits-4) > 2^(bits-1)``), found by trial division and
    :func:`is_probable_prime` (``MILLER_RABIN_ROUNDS`` rounds, error <= ``2^-128``),
    with ``p != q`` and ``gcd(pq, (p-1)(q-1)) = 1``.

    ``rng``: ``None`` draws candidates and bases from ``secrets`` (a CSPRNG); a numpy
    ``Generator`` or an int seed makes key generation deterministic, for reproducible
    simulations only: such keys are not secret, real keys need a CSPRNG. ``bits`` must
    be even and ``>= MIN_KEY_BITS``; 2048 or more for real use.
    """
    bits = _as_int(bits, "bits")
    if bits < MIN_KEY_BITS or bits % 2:
        raise ValueError(f"bits must be an even number >= {MIN_KEY_BITS}, got {bits}")
    be = _resolve_backend(backend)
    gen = _as_rng(rng)
    half = bits // 2
    while True:
        p = _random_prime(half, gen, be)
        q = _random_prime(half, gen, be)
        n = p * q
        if p != q and n.bit_length() == bits and math.gcd(n, (p - 1) * (q - 1)) == 1:
            break
    pub = PublicKey(n, be)
    return pub, PrivateKey(pub, p, q)


# --------------------------------------------------------------------------- ciphertexts


class Ciphertext:
    """A Paillier ciphertext: raw integer ``c`` in ``(0, n^2)`` under ``public_key``.

    ``frac_bits`` is its fixed-point scale: it encrypts the value ``m / 2^frac_bits``.
    Operators: ``a + b`` (``c_a c_b``), ``a + x`` for a plaintext ``x``
    (``c (1 + x n)``), ``-a`` (``c^(-1)``), ``a - b``, ``a * k`` for an integer ``k``
    (``c^k``; negative ``k`` through ``c^(-1)``) and ``a * w`` for a float ``w``
    (``w`` encoded with ``DEFAULT_FRAC_BITS``; see :meth:`mul`).
    """

    __slots__ = ("_c", "frac_bits", "public_key")

    def __init__(self, public_key: PublicKey, c: int, frac_bits: int = 0):
        c = _as_int(c, "ciphertext")
        if not 0 < c < public_key.nsquare:
            raise ValueError("a ciphertext must lie in (0, n^2)")
        if frac_bits < 0:
            raise ValueError(f"frac_bits must be >= 0, got {frac_bits}")
        self.public_key = public_key
        self._c = public_key.backend.mpz(c)
        self.frac_bits = int(frac_bits)

    @classmethod
    def _new(cls, public_key: PublicKey, c: int, frac_bits: int) -> Ciphertext:
        ct = object.__new__(cls)
        ct.public_key, ct._c, ct.frac_bits = public_key, c, frac_bits
        return ct

    @property
    def c(self) -> int:
        """The raw ciphertext as a plain Python ``int`` (what python-paillier takes)."""
        return int(self._c)

    def __repr__(self) -> str:
        return f"Ciphertext(frac_bits={self.frac_bits}, c={hex(self.c)[:14]}...)"

    # -- helpers
    def _pow(self, k: int) -> int:
        """``c^k mod n^2`` with ``k`` read mod n and centred (negative via the inverse)."""
        pk = self.public_key
        k %= pk.n
        if k > pk.max_int:
            k -= pk.n
        be = pk.backend
        if k < 0:
            return be.powmod(be.invert(self._c, pk._nsq), -k, pk._nsq)
        return be.powmod(self._c, k, pk._nsq)

    def _rescaled(self, frac_bits: int) -> Ciphertext:
        if frac_bits == self.frac_bits:
            return self
        return Ciphertext._new(
            self.public_key, self._pow(1 << (frac_bits - self.frac_bits)), frac_bits
        )

    # -- arithmetic
    def __add__(self, other: object) -> Ciphertext:
        pk = self.public_key
        if isinstance(other, Ciphertext):
            pk._check(other)
            f = max(self.frac_bits, other.frac_bits)
            a, b = self._rescaled(f), other._rescaled(f)
            return Ciphertext._new(pk, a._c * b._c % pk._nsq, f)
        if isinstance(other, numbers.Real):
            m = pk._plain(encode_fixed(other, self.frac_bits))  # type: ignore[arg-type]
            return Ciphertext._new(pk, self._c * (1 + pk._n * m) % pk._nsq, self.frac_bits)
        return NotImplemented

    __radd__ = __add__

    def __neg__(self) -> Ciphertext:
        pk = self.public_key
        return Ciphertext._new(pk, pk.backend.invert(self._c, pk._nsq), self.frac_bits)

    def __sub__(self, other: object) -> Ciphertext:
        if isinstance(other, Ciphertext | numbers.Real):
            return self + (-other)  # type: ignore[operator]
        return NotImplemented

    def __rsub__(self, other: object) -> Ciphertext:
        if isinstance(other, numbers.Real):
            return (-self) + other
        return NotImplemented

    def __mul__(self, k: object) -> Ciphertext:
        if isinstance(k, numbers.Integral):
            return Ciphertext._new(self.public_key, self._pow(int(k)), self.frac_bits)
        if isinstance(k, numbers.Real):
            return self.mul(float(k), DEFAULT_FRAC_BITS)
        return NotImplemented

    __rmul__ = __mul__

    def mul(self, w: float, frac_bits: int) -> Ciphertext:
        """``Enc(m round(w 2^g))`` with ``g = frac_bits``: ``frac_bits`` grows by ``g``."""
        k = encode_fixed(w, frac_bits)
        return Ciphertext._new(self.public_key, self._pow(k), self.frac_bits + frac_bits)


# --------------------------------------------------------------------------- randomness pool


class _FixedBase:
    """Fixed-base windowed exponentiation: ``base^e = prod_i T[i][e_i]`` with ``e_i`` the
    ``i``-th ``w``-bit digit of ``e`` and ``T[i][d] = base^(d 2^(w i))`` precomputed
    (Brickell, Gordon, McCurley and Wilson, EUROCRYPT 1992, the simple table form):
    ``ceil(exp_bits / w)`` multiplications per power, ``2^w`` table entries per digit."""

    def __init__(self, base: int, exp_bits: int, modulus: int, window: int, be: Backend):
        self.window = window
        self.modulus = modulus
        self.one = be.mpz(1)
        self.table: list[list[int]] = []
        g = base
        for _ in range(-(-exp_bits // window)):
            row = [self.one, g]
            for _ in range(2, 1 << window):
                row.append(row[-1] * g % modulus)
            self.table.append(row)
            g = row[-1] * g % modulus

    def pow(self, e: int) -> int:
        acc, mask, w, mod = self.one, (1 << self.window) - 1, self.window, self.modulus
        for row in self.table:
            d = e & mask
            if d:
                acc = acc * row[d] % mod
            e >>= w
        return acc


class RandomnessPool:
    """Obfuscators ``r^n mod n^2`` computed ahead of encryption, each handed out once.

    Encryption is ``(1 + m n) R mod n^2`` with ``R`` an obfuscator, so with a filled pool
    it costs one multiplication instead of a 2048-bit-exponent modexp; the work moves
    to :meth:`fill`, which can run while the machine is idle.

    ``method="paillier"``: ``R = r^n`` with ``r`` uniform in ``Z*_n``, exactly the
    distribution of ordinary Paillier encryption (no security change; saves latency,
    not total work).

    ``method="djn"``: the Damgård-Jurik-Nielsen variant (Damgård, Jurik and Nielsen, "A
    generalization of Paillier's public-key system with applications to electronic
    voting", Int. J. Inf. Secur. 9(6), 2010, the s = 1 case of their scheme with a
    fixed base): once per pool, ``x`` uniform in ``Z*_n``, ``h = -x^2 mod n`` and
    ``h_n = h^n mod n^2``; then ``R = h_n^a`` with ``a`` uniform in
    ``[0, 2^ceil(bits/2))``, computed by fixed-base windowed exponentiation (table of
    ``ceil(bits / 2 / window) 2^window`` residues). ``R`` is still an ``n``-th residue,
    so anyone (python-paillier included) decrypts as usual; the semantic security
    argument needs, besides the decisional composite residuosity assumption, that
    short exponents of ``h`` look like random elements of ``<h>`` (the paper's
    argument) - an extra assumption over plain Paillier.

    Trade-offs: obfuscators are as secret as the plaintexts (``c / R = 1 + m n``
    reveals ``m``), so a pool must stay with the encrypting party; an obfuscator must
    never be used twice: ``c1 / c2 = 1 + (m1 - m2) n mod n^2`` reveals the difference
    of the two plaintexts to anyone. :meth:`take` removes what it returns; an empty
    pool computes a fresh obfuscator on the spot (counted in ``online``).
    """

    def __init__(
        self,
        public_key: PublicKey,
        size: int = 0,
        *,
        method: str = "paillier",
        rng: RngLike = None,
        window: int = 8,
    ):
        if method not in ("paillier", "djn"):
            raise ValueError(f"unknown method {method!r}; allowed: 'paillier', 'djn'")
        if not 1 <= window <= 12:
            raise ValueError(f"window must be in [1, 12], got {window}")
        self.public_key = public_key
        self.method = method
        self.rng = _as_rng(rng)
        self.online = 0
        self._values: list[int] = []
        self._fixed: _FixedBase | None = None
        self._exp_bits = (public_key.bits + 1) // 2
        if method == "djn":
            pk, be = public_key, public_key.backend
            x = _random_unit(pk.n, self.rng)
            h = (-x * x) % pk.n
            h_n = be.powmod(be.mpz(h), pk._n, pk._nsq)
            self._fixed = _FixedBase(h_n, self._exp_bits, pk._nsq, window, be)
        self.fill(size)

    def __len__(self) -> int:
        return len(self._values)

    def _one(self) -> int:
        if self._fixed is None:
            return self.public_key.obfuscator(self.rng)
        return self._fixed.pow(_randbits(self._exp_bits, self.rng))

    def fill(self, count: int) -> None:
        """Compute ``count`` more obfuscators."""
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        self._values.extend(self._one() for _ in range(count))

    def take(self) -> int:
        """Remove and return one obfuscator (computed now if the pool is empty)."""
        if self._values:
            return self._values.pop()
        self.online += 1
        return self._one()


# --------------------------------------------------------------------------- packing


def headroom_for(summands: int, max_scalar: int = 1) -> int:
    """Headroom bits for a sum of ``summands`` packed vectors, each times an integer of
    absolute value at most ``max_scalar``: the magnitude is ``A = summands max_scalar``
    and the rule ``A <= 2^headroom`` gives ``headroom = ceil(log2(A))``."""
    if summands < 1 or max_scalar < 1:
        raise ValueError("summands and max_scalar must be >= 1")
    return (summands * max_scalar - 1).bit_length()


@dataclass(frozen=True)
class Packing:
    """Layout of several fixed-point values in one Paillier plaintext.

    ``slots`` slots of ``slot_bits = value_bits + headroom_bits`` bits; slot ``i`` holds
    bits ``[i slot_bits, (i + 1) slot_bits)``. A value ``x`` is encoded as
    ``v = round(x 2^frac_bits)``, which must satisfy ``|v| <= 2^(value_bits-1) - 1``
    (a symmetric range), and stored as ``v + offset`` with ``offset = 2^(value_bits-1)``.
    A combination ``sum_j w_j V_j`` holds ``sum_j w_j v_j + W offset`` per slot with
    ``W = sum_j w_j``; it is exact while ``A = sum_j |w_j| <= 2^headroom_bits``.
    :meth:`for_key` picks the most slots that fit: ``slots slot_bits <= bits(n) - 2``,
    so the packed plaintext stays below ``n / 2``.
    """

    value_bits: int
    headroom_bits: int
    slots: int
    frac_bits: int = 0

    def __post_init__(self):
        for name in ("value_bits", "slots"):
            if getattr(self, name) < 1:
                raise ValueError(f"Packing.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("headroom_bits", "frac_bits"):
            if getattr(self, name) < 0:
                raise ValueError(f"Packing.{name} must be >= 0, got {getattr(self, name)}")

    @classmethod
    def for_key(
        cls, public_key: PublicKey, value_bits: int, headroom_bits: int, frac_bits: int = 0
    ) -> Packing:
        """As many slots of ``value_bits + headroom_bits`` bits as fit under ``n / 2``."""
        slots = (public_key.bits - 2) // (value_bits + headroom_bits)
        if slots < 1:
            raise ValueError(
                f"a slot of {value_bits + headroom_bits} bits does not fit a "
                f"{public_key.bits}-bit key (at most {public_key.bits - 2} bits)"
            )
        return cls(value_bits, headroom_bits, slots, frac_bits)

    @property
    def slot_bits(self) -> int:
        """``value_bits + headroom_bits``."""
        return self.value_bits + self.headroom_bits

    @property
    def offset(self) -> int:
        """``2^(value_bits - 1)``, added to every stored value."""
        return 1 << (self.value_bits - 1)

    @property
    def max_magnitude(self) -> int:
        """Largest ``A = sum |w_j|`` the headroom allows: ``2^headroom_bits``."""
        return 1 << self.headroom_bits

    def check_key(self, public_key: PublicKey) -> None:
        """Raise ``ValueError`` if the layout does not fit below ``n / 2``."""
        if self.slots * self.slot_bits > public_key.bits - 2:
            raise ValueError(
                f"{self.slots} slots of {self.slot_bits} bits need {self.slots * self.slot_bits}"
                f" bits; a {public_key.bits}-bit key holds at most {public_key.bits - 2}"
            )

    def encode(self, values: Sequence[float]) -> list[int]:
        """Fixed-point integers of ``values``, each checked against the value range."""
        out = [encode_fixed(x, self.frac_bits) for x in values]
        lo, hi = 1 - self.offset, self.offset - 1
        for i, v in enumerate(out):
            if not lo <= v <= hi:
                raise ValueError(
                    f"value {values[i]!r} at index {i} encodes to {v}, outside the "
                    f"{self.value_bits}-bit range [{lo}, {hi}] (frac_bits={self.frac_bits})"
                )
        return out

    def pack(self, ints: Sequence[int]) -> int:
        """Plaintext ``sum_i (v_i + offset) 2^(i slot_bits)`` of at most ``slots`` values."""
        if len(ints) > self.slots:
            raise ValueError(f"{len(ints)} values do not fit {self.slots} slots")
        b, off = self.slot_bits, self.offset
        acc = 0
        for v in reversed(ints):
            acc = (acc << b) | (v + off)
        return acc

    def unpack(
        self, plaintext: int, count: int, weight: int = 1, magnitude: int = 1, n: int | None = None
    ) -> list[int]:
        """Values of the first ``count`` slots of a combination with ``W = weight``,
        ``A = magnitude``.

        Each slot holds ``s_i = sum_j w_j v_ij + W offset``; adding ``(A - W) offset`` to
        every slot (modulo ``n``, since ``s_i`` may be negative) turns it into
        ``t_i = sum_j w_j v_ij + A offset``; since ``|v| <= offset - 1``, ``t_i`` lies in
        ``[A, A 2^value_bits - A]``, inside ``[0, 2^slot_bits)`` when
        ``A <= 2^headroom_bits``, so the slots separate; the value is ``t_i - A offset``.
        """
        b, off = self.slot_bits, self.offset
        corr = (magnitude - weight) * off * sum(1 << (i * b) for i in range(count))
        t = plaintext + corr
        if n is not None:
            t %= n
        mask = (1 << b) - 1
        base = magnitude * off
        out = []
        for _ in range(count):
            out.append((t & mask) - base)
            t >>= b
        return out


class PackedVector:
    """An encrypted vector of ``length`` values, ``packing.slots`` per ciphertext.

    Supports ``u + v``, ``u - v``, ``-u``, ``u * k`` (integer ``k``) and
    :meth:`scale` (a float times ``2^frac_bits``); each updates ``weight`` ``W`` and
    ``magnitude`` ``A`` (see :class:`Packing`) and raises ``OverflowError`` if
    ``A`` would reach ``2^headroom_bits``. ``frac_bits`` is the current fixed-point
    scale (the packing's, plus what float scalars added).
    """

    __slots__ = (
        "ciphertexts",
        "frac_bits",
        "length",
        "magnitude",
        "packing",
        "public_key",
        "weight",
    )

    def __init__(
        self,
        public_key: PublicKey,
        ciphertexts: Sequence[Ciphertext],
        packing: Packing,
        length: int,
        weight: int = 1,
        magnitude: int = 1,
        frac_bits: int | None = None,
    ):
        if len(ciphertexts) != -(-length // packing.slots):
            raise ValueError(
                f"{length} values in slots of {packing.slots} need "
                f"{-(-length // packing.slots)} ciphertexts, got {len(ciphertexts)}"
            )
        self.public_key = public_key
        self.ciphertexts = tuple(ciphertexts)
        self.packing = packing
        self.length = length
        self.weight = weight
        self.magnitude = magnitude
        self.frac_bits = packing.frac_bits if frac_bits is None else frac_bits
        self._check_magnitude(magnitude)

    def __repr__(self) -> str:
        return (
            f"PackedVector(length={self.length}, ciphertexts={len(self.ciphertexts)}, "
            f"W={self.weight}, A={self.magnitude}, frac_bits={self.frac_bits})"
        )

    def __len__(self) -> int:
        return self.length

    def chunk_counts(self) -> list[int]:
        """How many values each ciphertext holds."""
        k = self.packing.slots
        return [min(k, self.length - i) for i in range(0, self.length, k)]

    def _check_magnitude(self, magnitude: int) -> None:
        if magnitude > self.packing.max_magnitude:
            raise OverflowError(
                f"packed slots would overflow: the result has magnitude A = sum |w| = "
                f"{magnitude}, but headroom_bits={self.packing.headroom_bits} allows at most "
                f"{self.packing.max_magnitude}; build the Packing with headroom_bits >= "
                f"{(magnitude - 1).bit_length()} (headroom_for)"
            )

    def _like(self, cts: Sequence[Ciphertext], weight: int, magnitude: int, frac: int):
        self._check_magnitude(magnitude)
        return PackedVector(
            self.public_key, cts, self.packing, self.length, weight, magnitude, frac
        )

    def _compatible(self, other: PackedVector) -> None:
        if other.public_key != self.public_key:
            raise ValueError("the packed vectors were made under different public keys")
        if other.packing != self.packing or other.length != self.length:
            raise ValueError("packed vectors must share packing and length to be added")
        if other.frac_bits != self.frac_bits:
            raise ValueError(
                f"packed vectors have frac_bits {self.frac_bits} and {other.frac_bits}; "
                "scale one of them first (scale(2.0 ** d, 0) or * 2**d)"
            )

    def __add__(self, other: object) -> PackedVector:
        if not isinstance(other, PackedVector):
            return NotImplemented
        self._compatible(other)
        magnitude = self.magnitude + other.magnitude
        self._check_magnitude(magnitude)
        nsq = self.public_key._nsq
        cts = [
            Ciphertext._new(self.public_key, a._c * b._c % nsq, 0)
            for a, b in zip(self.ciphertexts, other.ciphertexts, strict=True)
        ]
        return self._like(cts, self.weight + other.weight, magnitude, self.frac_bits)

    def __neg__(self) -> PackedVector:
        return self._like(
            [-c for c in self.ciphertexts], -self.weight, self.magnitude, self.frac_bits
        )

    def __sub__(self, other: object) -> PackedVector:
        if not isinstance(other, PackedVector):
            return NotImplemented
        return self + (-other)

    def __mul__(self, k: object) -> PackedVector:
        if isinstance(k, numbers.Integral):
            return self._times(int(k), 0)
        if isinstance(k, numbers.Real):
            raise TypeError("multiply a packed vector by an int, or use scale(x, frac_bits)")
        return NotImplemented

    __rmul__ = __mul__

    def scale(self, x: float, frac_bits: int) -> PackedVector:
        """Times ``round(x 2^frac_bits)``; the result has ``frac_bits`` more fractional bits."""
        return self._times(encode_fixed(x, frac_bits), frac_bits)

    def _times(self, k: int, extra_frac: int) -> PackedVector:
        magnitude = self.magnitude * abs(k)
        self._check_magnitude(magnitude)
        cts = [Ciphertext._new(self.public_key, c._pow(k), 0) for c in self.ciphertexts]
        return self._like(cts, self.weight * k, magnitude, self.frac_bits + extra_frac)

    def rerandomize(
        self, *, rng: RngLike = None, pool: RandomnessPool | None = None
    ) -> PackedVector:
        """Every ciphertext times a fresh ``Enc(0)`` (see :meth:`PublicKey.rerandomize`)."""
        cts = [self.public_key.rerandomize(c, rng=rng, pool=pool) for c in self.ciphertexts]
        return self._like(cts, self.weight, self.magnitude, self.frac_bits)


def encrypt_vector(
    public_key: PublicKey,
    values: Sequence[float],
    packing: Packing,
    *,
    rng: RngLike = None,
    pool: RandomnessPool | None = None,
) -> PackedVector:
    """Encrypt ``values`` packed ``packing.slots`` to a ciphertext (the last may hold fewer)."""
    packing.check_key(public_key)
    ints = packing.encode(values)
    if not ints:
        raise ValueError("cannot encrypt an empty vector")
    k = packing.slots
    cts = [
        Ciphertext._new(
            public_key,
            public_key._encrypt_residue(packing.pack(ints[i : i + k]), public_key._rn(rng, pool)),
            0,
        )
        for i in range(0, len(ints), k)
    ]
    return PackedVector(public_key, cts, packing, len(ints))


# --------------------------------------------------------------------------- applications


def aggregate(
    submissions: Sequence[Ciphertext] | Sequence[PackedVector],
) -> Ciphertext | PackedVector:
    """Encrypted sum of submissions (ciphertexts or packed vectors), one product per value.

    For packed vectors the headroom is checked for the whole sum before any work: the
    key holder decrypts ``sum_j V_j`` exactly when ``sum_j A_j < 2^headroom_bits``.
    """
    items = list(submissions)
    if not items:
        raise ValueError("nothing to aggregate")
    first = items[0]
    if isinstance(first, PackedVector):
        for v in items[1:]:
            if not isinstance(v, PackedVector):
                raise TypeError("aggregate takes only ciphertexts or only packed vectors")
            first._compatible(v)
        magnitude = sum(v.magnitude for v in items)
        first._check_magnitude(magnitude)
        nsq = first.public_key._nsq
        cts = []
        for j in range(len(first.ciphertexts)):
            acc = first.ciphertexts[j]._c
            for v in items[1:]:
                acc = acc * v.ciphertexts[j]._c % nsq
            cts.append(Ciphertext._new(first.public_key, acc, 0))
        return first._like(cts, sum(v.weight for v in items), magnitude, first.frac_bits)
    if not all(isinstance(c, Ciphertext) for c in items):
        raise TypeError("aggregate takes only ciphertexts or only packed vectors")
    total = first
    for c in items[1:]:
        total = total + c
    return total


def encrypted_dot(
    enc_features: Sequence[Ciphertext] | Sequence[PackedVector],
    weights: Sequence[float] | np.ndarray,
    scale: int = DEFAULT_FRAC_BITS,
    *,
    bias: float = 0.0,
    rerandomize: bool = True,
    rng: RngLike = None,
    pool: RandomnessPool | None = None,
) -> Ciphertext | PackedVector:
    """Encrypted linear inference ``sum_i w_i x_i + bias`` with plaintext weights.

    ``w_i`` are encoded as ``k_i = round(w_i 2^scale)``, so the result has
    ``frac_bits(x) + scale`` fractional bits; it is ``prod_{k_i > 0} c_i^k_i (prod_{k_i
    < 0} c_i^-k_i)^(-1) (1 + b n)`` (one inversion), re-randomized unless told not to.

    ``enc_features`` is either one encrypted feature vector (a list of ciphertexts,
    one per feature; returns a ciphertext) or a batch packed feature-major (a list of
    packed vectors, column ``i`` holding feature ``i`` of every sample; returns a packed
    vector of the predictions, with magnitude ``A = sum |k_i|`` for fresh columns, so
    ``headroom_bits >= ceil(log2(A))``; ``bias`` must then be 0 - add it after
    decryption).
    """
    w = np.asarray(weights, dtype=float)
    feats = list(enc_features)
    if w.ndim != 1 or len(feats) != w.size or not feats:
        raise ValueError(f"need one weight per feature: {len(feats)} features, weights {w.shape}")
    ks = [encode_fixed(float(x), scale) for x in w]
    if isinstance(feats[0], PackedVector):
        if bias != 0.0:
            raise ValueError("bias is not supported on packed batches; add it after decryption")
        first = feats[0]
        for v in feats[1:]:
            first._compatible(v)  # type: ignore[arg-type]
        first._check_magnitude(sum(abs(k) * v.magnitude for v, k in zip(feats, ks, strict=True)))
        terms = [v._times(k, scale) for v, k in zip(feats, ks, strict=True)]  # type: ignore[union-attr]
        out = aggregate(terms)
        return out.rerandomize(rng=rng, pool=pool) if rerandomize else out
    pk = feats[0].public_key
    f = feats[0].frac_bits
    be = pk.backend
    pos, neg = be.mpz(1), be.mpz(1)
    for ct, k in zip(feats, ks, strict=True):
        if not isinstance(ct, Ciphertext):
            raise TypeError("enc_features must be all ciphertexts or all packed vectors")
        pk._check(ct)
        if ct.frac_bits != f:
            raise ValueError("all encrypted features must share one frac_bits")
        if k > 0:
            pos = pos * be.powmod(ct._c, k, pk._nsq) % pk._nsq
        elif k < 0:
            neg = neg * be.powmod(ct._c, -k, pk._nsq) % pk._nsq
    c = pos * be.invert(neg, pk._nsq) % pk._nsq if neg != 1 else pos
    out = Ciphertext._new(pk, c, f + scale)
    if bias != 0.0:
        out = out + bias
    return pk.rerandomize(out, rng=rng, pool=pool) if rerandomize else out
