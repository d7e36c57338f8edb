"""Paillier speed: this module's encryption, unpacked and packed, beside python-paillier.

Plain Python: ``python benchmarks/paillier.py [--bits 2048] [--values 40]``. One key of
``bits`` bits (deterministic seed; real keys use a CSPRNG). Times are wall clock per
value (best of three runs), ms:

- phe: python-paillier (``phe``, with gmpy2 when installed) ``encrypt(int)``,
  ``decrypt``, ``EncryptedNumber + EncryptedNumber`` and ``EncryptedNumber * int``
  on the same ``n``, when ``phe`` is installed.
- ours: :mod:`mechanisms.privacy.paillier`, one value per ciphertext; "+pool" takes
  the obfuscator ``r^n`` from a :class:`RandomnessPool` filled beforehand (online cost).
- packed: values of 32 bits with 16 headroom bits, as many per ciphertext as fit.
  "+pool" is online cost with a filled pool; "+djn" is the total cost per value of
  filling a Damgård-Jurik-Nielsen fixed-base pool and encrypting with it.

Scalar multiplication uses 15-bit integers (within the packing's headroom). Published
reference: python-paillier with gmpy2 about 10 ms per 2048-bit encryption. Numbers
compare implementations side by side on one machine; they are not assertions.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from mechanisms.privacy import paillier as P

try:
    import phe
except ImportError:  # pragma: no cover
    phe = None


def per_value(fn, values: int) -> float:
    """One wall-clock run of ``fn()``, in ms per value."""
    t = time.perf_counter()
    fn()
    return 1e3 * (time.perf_counter() - t) / values


def best_interleaved(cases: dict[str, tuple], repeats: int = 3) -> dict[str, float]:
    """Best of ``repeats`` rounds; each round times every case once, in turn, so that a
    slow spell of a shared machine hits all implementations alike."""
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(repeats):
        for name, (fn, values) in cases.items():
            best[name] = min(best[name], per_value(fn, values))
    return best


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bits", type=int, default=2048)
    ap.add_argument("--values", type=int, default=40, help="values for the unpacked runs")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    bits, N, R = args.bits, args.values, args.repeats
    rng = np.random.default_rng(0)

    t = time.perf_counter()
    pub, priv = P.keygen(bits, rng=1)
    keygen_s = time.perf_counter() - t
    packing = P.Packing.for_key(pub, value_bits=32, headroom_bits=16)
    L = packing.slots * 10  # ten packed ciphertexts
    ints = [int(v) for v in rng.integers(-(2**31), 2**31, size=max(N, L))]
    small = [int(k) for k in rng.integers(1, 2**15, size=N)]
    k_packed = small[0]
    shifted = ints[1:N] + ints[:1]

    print(
        f"Paillier, {bits}-bit n, backend {pub.backend.name}; keygen {keygen_s:.2f} s; "
        f"packing: {packing.slots} values of 32 bits + 16 headroom bits per ciphertext"
    )

    cases: dict[tuple[str, str], tuple] = {}
    if phe is not None:
        ppub = phe.PaillierPublicKey(pub.n)
        ppriv = phe.PaillierPrivateKey(ppub, priv.p, priv.q)
        penc = [ppub.encrypt(m) for m in ints[:N]]
        penc2 = penc[1:] + penc[:1]
        cases["encrypt", "phe"] = (lambda: [ppub.encrypt(m) for m in ints[:N]], N)
        cases["decrypt", "phe"] = (lambda: [ppriv.decrypt(c) for c in penc], N)
        cases["add", "phe"] = (lambda: [a + b for a, b in zip(penc, penc2, strict=True)], N)
        cases["mul", "phe"] = (lambda: [c * k for c, k in zip(penc, small, strict=True)], N)
        assert [ppriv.decrypt(a + b) for a, b in zip(penc, penc2, strict=True)] == [
            a + b for a, b in zip(ints[:N], shifted, strict=True)
        ]

    enc = [pub.encrypt(m) for m in ints[:N]]
    enc2 = enc[1:] + enc[:1]
    pools = iter([P.RandomnessPool(pub, N) for _ in range(R)])
    cases["encrypt", "ours"] = (lambda: [pub.encrypt(m) for m in ints[:N]], N)
    cases["encrypt", "ours+pool"] = (
        lambda: (lambda pool: [pub.encrypt(m, pool=pool) for m in ints[:N]])(next(pools)),
        N,
    )
    cases["decrypt", "ours"] = (lambda: [priv.decrypt(c) for c in enc], N)
    cases["add", "ours"] = (lambda: [a + b for a, b in zip(enc, enc2, strict=True)], N)
    cases["mul", "ours"] = (lambda: [c * k for c, k in zip(enc, small, strict=True)], N)
    assert [priv.decrypt(a + b) for a, b in zip(enc, enc2, strict=True)] == [
        a + b for a, b in zip(ints[:N], shifted, strict=True)
    ]

    vals = ints[:L]
    vec = P.encrypt_vector(pub, vals, packing)
    n_ct = len(vec.ciphertexts)
    ppools = iter([P.RandomnessPool(pub, n_ct) for _ in range(R)])
    t = time.perf_counter()
    djn = P.RandomnessPool(pub, 0, method="djn", rng=2)
    djn_setup_s = time.perf_counter() - t

    def djn_total():
        djn.fill(n_ct)
        return P.encrypt_vector(pub, vals, packing, pool=djn)

    cases["encrypt", "packed"] = (lambda: P.encrypt_vector(pub, vals, packing), L)
    cases["encrypt", "packed+pool"] = (
        lambda: P.encrypt_vector(pub, vals, packing, pool=next(ppools)),
        L,
    )
    cases["encrypt", "packed+djn"] = (djn_total, L)
    cases["decrypt", "packed"] = (lambda: priv.decrypt_vector_ints(vec), L)
    cases["add", "packed"] = (lambda: vec + vec, L)
    cases["mul", "packed"] = (lambda: vec * k_packed, L)
    cases["fill", "paillier r^n"] = (lambda: P.RandomnessPool(pub, 10), 10)
    cases["fill", "djn h_n^a"] = (lambda: djn.fill(50), 50)
    assert priv.decrypt_vector_ints(vec * k_packed + vec) == [(k_packed + 1) * v for v in vals]
    assert priv.decrypt_vector_ints(djn_total()) == vals

    best = best_interleaved(cases, R)
    rows: dict[str, dict[str, float]] = {}
    for (op, col), ms in best.items():
        rows.setdefault(op, {})[col] = ms
    fill = rows.pop("fill")

    order = ("phe", "ours", "ours+pool", "packed", "packed+pool", "packed+djn")
    cols = [c for c in order if any(c in r for r in rows.values())]
    print()
    print("ms per value".ljust(14) + "".join(c.rjust(13) for c in cols))
    for op, r in rows.items():
        print(op.ljust(14) + "".join(f"{r[c]:13.4f}" if c in r else "-".rjust(13) for c in cols))
    print()
    print(
        "obfuscator fill, ms each: "
        + ", ".join(f"{k} {v:.3f}" for k, v in fill.items())
        + f" (djn table setup {djn_setup_s:.2f} s, once per pool)"
    )
    ref = rows["encrypt"].get("phe")
    if ref is None:
        print("python-paillier (phe) not installed: no ratios")
        return
    notes = {
        "ours": "fresh r^n, one value per ciphertext",
        "ours+pool": "online only (pool filled beforehand)",
        "packed": "fresh r^n per ciphertext, total work",
        "packed+pool": "online only (pool filled beforehand)",
        "packed+djn": "total work: DJN pool fill + encryption",
    }
    print("encryption throughput vs phe (phe ms / ours ms per value):")
    for c in cols[1:]:
        if c in rows["encrypt"]:
            print(f"  {c:<12} {ref / rows['encrypt'][c]:9.1f}x   {notes[c]}")


if __name__ == "__main__":
    main()
