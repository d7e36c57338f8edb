"""The symmetric rank-k update of the training window's Gram matrix, ``C += alpha z'z``.

BLAS ``dsyrk`` on the upper triangle of a Fortran-ordered ``C``, in place. Two ways in:

* :data:`nogil_dsyrk`: SciPy's BLAS through its C API (``scipy.linalg.cython_blas``,
  whose function pointers SciPy exports as capsules, the way Numba calls them) and
  ``ctypes``, which releases the GIL during the call. The update can then run in a
  thread beside the rest of a round (:meth:`sim.model.MarketModel._advance_gram`).
  ``None`` where the capsule cannot be read.
* :func:`dsyrk`: ``scipy.linalg.blas.dsyrk``, whose wrapper holds the GIL.

Both run the same BLAS routine on the same arguments (the upper triangle, ``z``
transposed from a Fortran-ordered copy), so they give the same bits.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

import numpy as np
from scipy.linalg import blas


def dsyrk(alpha: float, z: np.ndarray, c: np.ndarray) -> None:
    """``c += alpha z'z`` on the upper triangle of the Fortran-ordered square ``c``."""
    out = blas.dsyrk(alpha, z, beta=1.0, c=c, trans=1, lower=0, overwrite_c=1)
    if not np.shares_memory(out, c):  # the wrapper copied c: never expected, but say so
        raise RuntimeError("dsyrk did not update the Gram matrix in place")


def _capsule_dsyrk() -> Callable[[float, np.ndarray, np.ndarray], None] | None:
    try:
        from scipy.linalg import cython_blas

        capsule = cython_blas.__pyx_capi__["dsyrk"]
        api = ctypes.pythonapi
        get_name = ctypes.PYFUNCTYPE(ctypes.c_char_p, ctypes.py_object)(("PyCapsule_GetName", api))
        get_pointer = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object, ctypes.c_char_p)(
            ("PyCapsule_GetPointer", api)
        )
        pointer = get_pointer(capsule, get_name(capsule))
    except (ImportError, AttributeError, KeyError, ValueError, TypeError):
        return None
    if not pointer:
        return None
    i, d = ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_double)
    # void dsyrk(char *uplo, char *trans, int *n, int *k, double *alpha, double *a,
    #            int *lda, double *beta, double *c, int *ldc)   (scipy/linalg/cython_blas.pxd)
    # CFUNCTYPE functions release the GIL while they run.
    fn = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_char_p, i, i, d, d, i, d, d, i)(pointer)
    byref = ctypes.byref

    def nogil(alpha: float, z: np.ndarray, c: np.ndarray) -> None:
        """``c += alpha z'z`` on the upper triangle of ``c``, without the GIL."""
        zf = np.asfortranarray(z, dtype=np.float64)
        k, n = zf.shape
        if c.dtype != np.float64 or not c.flags.f_contiguous or c.shape != (n, n):
            raise ValueError(f"c must be a Fortran-ordered float64 ({n}, {n}) array")
        if not c.flags.writeable:
            raise ValueError("c must be writeable")
        if k == 0 or n == 0:
            return
        fn(
            b"U",
            b"T",
            byref(ctypes.c_int(n)),
            byref(ctypes.c_int(k)),
            byref(ctypes.c_double(alpha)),
            zf.ctypes.data_as(d),
            byref(ctypes.c_int(k)),
            byref(ctypes.c_double(1.0)),
            c.ctypes.data_as(d),
            byref(ctypes.c_int(n)),
        )

    return nogil


#: ``nogil_dsyrk(alpha, z, c)``: :func:`dsyrk` without the GIL, or None if unavailable.
nogil_dsyrk = _capsule_dsyrk()
