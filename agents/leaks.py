"""The leak network: how plaintext data reaches free riders, spreads among them and ages.

Nodes are forecasters (rows of the forecaster population: developers, who buy data,
and free riders, who receive it); the state is a boolean matrix ``held`` (forecasters x
feeds): ``held[i, f]`` when node ``i`` holds a leaked copy of feed ``f``. A round:

1. **leak** (buy phase) — each plaintext purchase leaks with probability ``p`` to one
   uniformly random *receptive* neighbour of its buyer (an active free rider); a buyer
   with no such neighbour leaks nothing.
2. **use** — free riders train on the feeds they hold (the engine's buy phase).
3. **decay** (adapt phase) — each held leak survives into the next round with
   probability ``2^(-1/h)`` (``h`` the half-life in rounds), so half of them are gone
   after ``h`` rounds; ``h = 0`` drops every leak after the round it happened.
4. **spread** (adapt phase) — a receptive node that does not hold feed ``f`` gets it
   with probability ``1 - (1 - s)^k``, ``k`` its neighbours that hold ``f``.

The graph is a networkx graph drawn at genesis (Erdős–Rényi, Barabási–Albert or
Watts–Strogatz, seeded) and used as a scipy CSR adjacency; ``None`` stands for the
complete graph, which is never built (any node reaches any other), so a large
population costs nothing under the default. Everything here is a pure function of
arrays and a numpy ``Generator``: nothing imports the engine.
"""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import scipy.sparse as sp

#: Graph kinds a scenario may name (``market.leak_network``).
NETWORKS = ("complete", "erdos_renyi", "barabasi_albert", "watts_strogatz")

Adjacency = sp.csr_array | None  # None: the complete graph


def _even(degree: int) -> int:
    """``degree`` rounded up to an even number (at least 2)."""
    return max(2, 2 * math.ceil(degree / 2))


def build_graph(kind: str, n: int, degree: int, rewire: float, seed: int) -> nx.Graph:
    """A seeded networkx graph on nodes ``0..n-1`` with mean degree about ``degree``.

    - ``complete``: every pair linked (mean degree ``n - 1``).
    - ``erdos_renyi``: ``G(n, p)`` with ``p = degree / (n - 1)``, so the expected mean
      degree is ``degree`` (Erdős & Rényi 1959; Gilbert 1959; networkx
      ``fast_gnp_random_graph``).
    - ``barabasi_albert``: preferential attachment, each new node linking to
      ``m = degree / 2`` existing ones (rounded up), mean degree ``2m(n - m) / n``,
      about ``degree`` (Barabási & Albert 1999).
    - ``watts_strogatz``: a ring lattice where each node links to its ``degree / 2``
      nearest neighbours on each side (``degree`` rounded up to even), each edge
      rewired with probability ``rewire`` (Watts & Strogatz 1998); mean degree exactly
      the even ``degree``.

    When ``n`` is too small for the requested degree the graph is complete.
    """
    if kind not in NETWORKS:
        raise ValueError(f"unknown leak network {kind!r}; allowed: {', '.join(NETWORKS)}")
    if n <= 1 or kind == "complete":
        return nx.complete_graph(max(n, 0))
    if kind == "erdos_renyi":
        return nx.fast_gnp_random_graph(n, min(1.0, degree / (n - 1)), seed=seed)
    k = _even(degree)
    if kind == "barabasi_albert":
        m = k // 2
        return nx.complete_graph(n) if m >= n else nx.barabasi_albert_graph(n, m, seed=seed)
    return nx.complete_graph(n) if k >= n - 1 else nx.watts_strogatz_graph(n, k, rewire, seed=seed)


def adjacency(graph: nx.Graph, n: int, order: np.ndarray | None = None) -> sp.csr_array:
    """The graph's symmetric 0/1 adjacency as a CSR array; row ``i`` is node ``order[i]``.

    ``order`` defaults to ``0..n-1``.
    """
    if n == 0:
        return sp.csr_array((0, 0), dtype=np.int64)
    nodes = range(n) if order is None else [int(v) for v in order]
    return nx.to_scipy_sparse_array(graph, nodelist=nodes, dtype=np.int64, format="csr")


def network(kind: str, n: int, degree: int, rewire: float, seed: int) -> Adjacency:
    """The adjacency of :func:`build_graph` over rows ``0..n-1``; ``None`` when complete.

    Row ``i`` is graph node ``perm[i]`` for a random permutation ``perm`` (drawn from
    ``seed``): the generators give nodes roles by label (Barabási–Albert's first nodes
    become hubs, Watts–Strogatz's ring puts consecutive labels side by side), while the
    engine's rows come in blocks (developers, then free riders), so without shuffling
    the free riders would all be late, poorly linked, and next to each other.
    """
    if kind == "complete":
        return None
    perm = np.random.default_rng(seed).permutation(n)
    return adjacency(build_graph(kind, n, degree, rewire, seed), n, perm)


def attach(
    adj: Adjacency,
    n_new: int,
    degree: int,
    eligible: np.ndarray,
    preferential: bool,
    rng: np.random.Generator,
) -> Adjacency:
    """Add ``n_new`` nodes, each linked to ``degree`` distinct eligible existing nodes.

    Each entrant picks ``min(degree, #eligible)`` of the nodes present before it
    arrived (``eligible``, a mask over them) without replacement: uniformly, or with
    probability proportional to their degree when ``preferential`` (the Barabási–Albert
    rule; if fewer than ``degree`` eligible nodes have a link, every eligible node's
    weight is its degree + 1). Entrants of one batch do not link to each other. An
    entrant arrives with ``degree`` links, the network's stated mean, so entry raises
    the mean degree a little (each entrant adds ``2 * degree`` to the degree sum).
    The complete graph (``None``) stays complete.
    """
    if adj is None or n_new <= 0:
        return adj
    n = adj.shape[0]
    pool = np.flatnonzero(np.asarray(eligible, bool)[:n])
    k = min(degree, pool.size)
    src, dst = [], []
    if k > 0:
        w = None
        if preferential:
            deg = np.asarray(adj.sum(axis=1)).ravel()[pool].astype(float)
            if np.count_nonzero(deg) < k:
                deg = deg + 1.0
            w = deg / deg.sum()
        for j in range(n_new):
            to = rng.choice(pool, size=k, replace=False, p=w)
            src.append(np.full(k, n + j))
            dst.append(to)
    m = n + n_new
    old = adj.tocoo()
    if src:
        s, d = np.concatenate(src), np.concatenate(dst)
        rows = np.concatenate([old.row, s, d])
        cols = np.concatenate([old.col, d, s])
    else:
        rows, cols = old.row, old.col
    data = np.ones(rows.size, dtype=np.int64)
    return sp.csr_array((data, (rows, cols)), shape=(m, m))


def _restrict(adj: sp.csr_array, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CSR ``(indptr, indices)`` of ``adj`` with only the columns where ``keep`` is True."""
    mask = keep[adj.indices]
    cum = np.concatenate(([0], np.cumsum(mask)))
    return cum[adj.indptr], adj.indices[mask]


def leak(
    adj: Adjacency,
    buyers: np.ndarray,
    receptive: np.ndarray,
    probability: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Which purchases leak, and to whom.

    Purchase ``j`` (by node ``buyers[j]``) leaks with probability ``probability`` to one
    uniformly random receptive neighbour of its buyer; a buyer without one leaks
    nothing. In the complete graph every receptive node is a neighbour (buyers are
    developers, never receptive, so a buyer never leaks to itself). Returns
    ``(receivers, purchases)``: the receiving node and the index into ``buyers`` of every
    leak that happened. Draws nothing when no node is receptive.
    """
    receptive = np.asarray(receptive, bool)
    none = np.zeros(0, np.int64)
    if not receptive.any() or buyers.size == 0:
        return none, none
    hit = np.flatnonzero(rng.random(buyers.size) < probability)
    if adj is None:
        if hit.size == 0:
            return none, none
        pool = np.flatnonzero(receptive)
        return pool[rng.integers(0, pool.size, hit.size)], hit
    indptr, indices = _restrict(adj, receptive)
    b = buyers[hit]
    deg = indptr[b + 1] - indptr[b]
    ok = deg > 0
    hit, b, deg = hit[ok], b[ok], deg[ok]
    if hit.size == 0:
        return none, none
    return indices[indptr[b] + rng.integers(0, deg)], hit


def holding_neighbours(adj: Adjacency, held: np.ndarray) -> np.ndarray:
    """``k[i, f]``: the neighbours of node ``i`` that hold feed ``f`` (``A @ held``).

    In the complete graph every other node is a neighbour: ``k = sum_i held - held``.
    """
    h = np.asarray(held, np.int64)
    if adj is None:
        return h.sum(axis=0, keepdims=True) - h
    return np.asarray(adj @ h)


def spread(
    adj: Adjacency,
    held: np.ndarray,
    receptive: np.ndarray,
    probability: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """One round of spreading: a new ``held`` matrix.

    A receptive node that does not hold feed ``f`` receives it with probability
    ``1 - (1 - s)^k``, ``k`` the neighbours holding ``f`` at the start of the round (each
    holder passes it along each edge independently with probability ``s``): the
    discrete-time Reed–Frost chain-binomial epidemic, or the independent cascade of
    Kempe, Kleinberg & Tardos (2003) without its one-shot limit. Holders keep what they
    hold. Draws one uniform number per candidate (non-holder with ``k > 0``) only.
    """
    out = np.array(held, dtype=bool, copy=True)
    if probability <= 0 or not out.any():
        return out
    k = holding_neighbours(adj, out)
    cand = np.asarray(receptive, bool)[:, None] & ~out & (k > 0)
    r, c = np.nonzero(cand)
    p = 1.0 - (1.0 - probability) ** k[r, c]
    got = rng.random(r.size) < p
    out[r[got], c[got]] = True
    return out


def survival(half_life: float) -> float:
    """Chance that a held leak lasts one more round: ``2^(-1/h)``; 0 for ``h = 0``.

    Exponential decay with half-life ``h`` rounds (geometric survival, so after ``h``
    rounds half the leaks remain: ``survival(h)^h = 1/2``).
    """
    return 0.0 if half_life <= 0 else 2.0 ** (-1.0 / half_life)


def decay(held: np.ndarray, half_life: float, rng: np.random.Generator) -> np.ndarray:
    """A new ``held``: each held leak survives independently with ``survival(half_life)``.

    Draws one uniform number per held leak only (none when ``h = 0``).
    """
    q = survival(half_life)
    out = np.zeros_like(held, dtype=bool)
    if q <= 0:
        return out
    r, c = np.nonzero(held)
    keep = rng.random(r.size) < q
    out[r[keep], c[keep]] = True
    return out
