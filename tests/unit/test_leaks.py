"""The leak network (agents/leaks.py): graphs, leaks, spread and decay on small arrays.

Oracles: the binomial distribution (leak and spread counts), the Reed-Frost infection
probability 1 - (1 - s)^k, geometric survival with half-life h (2^(-1/h) per round),
and the degree sums of the Erdős–Rényi, Barabási–Albert and Watts–Strogatz generators.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from agents import leaks


def _within(count: int, n: int, p: float, z: float = 4.0) -> bool:
    """``count`` is within ``z`` standard deviations of Binomial(n, p)'s mean."""
    return abs(count - n * p) <= z * math.sqrt(n * p * (1 - p))


def _star_gadgets(k: int, copies: int) -> sp.csr_array:
    """``copies`` disjoint stars: one centre (node 0 of each block) and ``k`` leaves."""
    block = k + 1
    rows, cols = [], []
    for c in range(copies):
        centre = c * block
        for j in range(1, block):
            rows += [centre, centre + j]
            cols += [centre + j, centre]
    n = copies * block
    return sp.csr_array((np.ones(len(rows), np.int64), (rows, cols)), shape=(n, n))


# ------------------------------------------------------------------ graphs


@pytest.mark.parametrize("degree", [4, 5])
def test_barabasi_albert_has_the_stated_mean_degree(degree):
    n = 1000
    g = leaks.build_graph("barabasi_albert", n, degree, 0.0, seed=1)
    m = 2 * math.ceil(degree / 2) // 2  # edges per new node: degree rounded up to even, halved
    # networkx starts from a star on m + 1 nodes (m edges) and adds m edges per node after
    assert g.number_of_edges() == m * (n - m)
    assert 2 * g.number_of_edges() / n == pytest.approx(2 * m, rel=0.01)


@pytest.mark.parametrize("degree, even", [(4, 4), (5, 6)])
def test_watts_strogatz_has_exactly_the_even_degree(degree, even):
    n = 500
    g = leaks.build_graph("watts_strogatz", n, degree, 0.3, seed=2)
    assert 2 * g.number_of_edges() == n * even  # rewiring keeps the number of edges


def test_erdos_renyi_mean_degree_is_binomial():
    n, degree = 2000, 6
    g = leaks.build_graph("erdos_renyi", n, degree, 0.0, seed=3)
    pairs = n * (n - 1) // 2
    assert _within(g.number_of_edges(), pairs, degree / (n - 1))


def test_complete_network_is_none_and_small_populations_are_complete():
    assert leaks.network("complete", 50, 4, 0.1, seed=0) is None
    assert leaks.build_graph("complete", 6, 4, 0.1, seed=0).number_of_edges() == 15
    for kind in ("barabasi_albert", "watts_strogatz"):
        assert leaks.build_graph(kind, 4, 8, 0.1, seed=0).number_of_edges() == 6
    with pytest.raises(ValueError, match="unknown leak network"):
        leaks.build_graph("ring", 10, 4, 0.1, seed=0)


def test_network_is_a_symmetric_shuffled_adjacency():
    n = 300
    adj = leaks.network("barabasi_albert", n, 4, 0.0, seed=5)
    assert adj.shape == (n, n)
    assert (adj != adj.T).nnz == 0 and adj.diagonal().sum() == 0
    deg = np.asarray(adj.sum(axis=1)).ravel()
    assert deg.sum() == 2 * 2 * (n - 2)
    # the generator's first nodes become hubs; after shuffling they are not rows 0, 1, 2
    g = leaks.build_graph("barabasi_albert", n, 4, 0.0, seed=5)
    plain = np.array([g.degree(i) for i in range(n)])
    assert plain[:3].mean() > 3 * plain.mean()
    assert deg[:3].mean() < plain[:3].mean()
    assert sorted(deg) == sorted(plain)  # the same graph, relabelled


# ---------------------------------------------------------------- entrants


def test_entrants_attach_to_degree_eligible_existing_nodes():
    rng = np.random.default_rng(0)
    adj = leaks.network("erdos_renyi", 40, 4, 0.0, seed=1)
    eligible = np.ones(40, bool)
    eligible[:10] = False  # e.g. agents that left
    grown = leaks.attach(adj, 5, 4, eligible, False, rng)
    assert grown.shape == (45, 45)
    assert (grown != grown.T).nnz == 0
    assert (grown[:40, :40] != adj).nnz == 0  # the old graph is unchanged
    new = grown[40:].toarray()
    assert (new.sum(axis=1) == 4).all()
    assert new[:, :10].sum() == 0 and new[:, 40:].sum() == 0  # eligible, not each other


def test_entrants_with_few_eligible_nodes_link_to_all_of_them():
    rng = np.random.default_rng(0)
    adj = leaks.network("watts_strogatz", 10, 2, 0.0, seed=1)
    eligible = np.zeros(10, bool)
    eligible[[2, 7]] = True
    grown = leaks.attach(adj, 1, 4, eligible, True, rng)
    assert sorted(grown[[10]].indices) == [2, 7]
    assert leaks.attach(None, 3, 4, np.ones(5, bool), False, rng) is None


def test_preferential_attachment_picks_by_degree():
    # a star with 50 leaves: the hub has half the degree sum, each leaf 1/100 of it
    adj = _star_gadgets(50, 1)
    rng = np.random.default_rng(4)
    n_new = 2000
    grown = leaks.attach(adj, n_new, 1, np.ones(51, bool), True, rng)
    to_hub = int(grown[[0]].toarray()[0, 51:].sum())
    assert _within(to_hub, n_new, 0.5)
    uniform = leaks.attach(adj, n_new, 1, np.ones(51, bool), False, rng)
    assert _within(int(uniform[[0]].toarray()[0, 51:].sum()), n_new, 1 / 51)


# ------------------------------------------------------------------- leaks


def test_leaks_happen_at_the_stated_rate_in_the_complete_graph():
    rng = np.random.default_rng(10)
    n_nodes, p = 30, 0.07
    receptive = np.zeros(n_nodes, bool)
    receptive[20:] = True
    buyers = rng.integers(0, 20, 50_000)
    to, which = leaks.leak(None, buyers, receptive, p, rng)
    assert _within(to.size, buyers.size, p)
    assert receptive[to].all()
    counts = np.bincount(to, minlength=n_nodes)[20:]  # uniform over the ten receptive
    assert all(_within(c, to.size, 0.1) for c in counts)
    assert np.unique(which).size == which.size


def test_leaks_reach_only_receptive_neighbours_at_the_stated_rate():
    rng = np.random.default_rng(11)
    n = 400
    adj = leaks.network("erdos_renyi", n, 4, 0.0, seed=7)
    receptive = rng.random(n) < 0.3
    buyers = np.flatnonzero(~receptive)
    buyers = np.repeat(buyers, 100)
    p = 0.2
    to, which = leaks.leak(adj, buyers, receptive, p, rng)
    dense = adj.toarray()
    assert receptive[to].all()
    assert dense[buyers[which], to].all()  # every receiver is a neighbour of its buyer
    has = (dense[:, receptive].sum(axis=1) > 0)[buyers]
    assert has[which].all()  # a buyer without a receptive neighbour never leaks
    assert _within(to.size, int(has.sum()), p)


def test_a_leak_picks_among_the_buyers_receptive_neighbours_uniformly():
    adj = _star_gadgets(4, 1)  # centre 0, leaves 1..4
    receptive = np.array([False, True, True, True, False])
    rng = np.random.default_rng(12)
    to, _ = leaks.leak(adj, np.zeros(30_000, np.int64), receptive, 1.0, rng)
    counts = np.bincount(to, minlength=5)
    assert counts[0] == counts[4] == 0
    assert all(_within(c, to.size, 1 / 3) for c in counts[1:4])


def test_nothing_leaks_without_receptive_nodes_and_nothing_is_drawn():
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    to, which = leaks.leak(None, np.arange(5), np.zeros(10, bool), 1.0, rng)
    assert to.size == which.size == 0
    assert rng.bit_generator.state == state


# ------------------------------------------------------------------ spread


@pytest.mark.parametrize("k", [1, 2, 4])
def test_spread_follows_one_minus_one_minus_s_to_the_k(k):
    """A centre with k holding leaves receives with probability 1 - (1 - s)^k."""
    s, copies = 0.3, 4000
    adj = _star_gadgets(k, copies)
    n = adj.shape[0]
    held = np.zeros((n, 1), bool)
    centres = np.arange(copies) * (k + 1)
    held[:, 0] = True
    held[centres, 0] = False
    receptive = np.ones(n, bool)
    out = leaks.spread(adj, held, receptive, s, np.random.default_rng(k))
    assert out[held].all()  # holders keep what they hold
    assert _within(int(out[centres, 0].sum()), copies, 1 - (1 - s) ** k)


def test_spread_in_the_complete_graph_counts_every_holder():
    held = np.zeros((6, 2), bool)
    held[[0, 1], 0] = True  # two holders of feed 0, nobody holds feed 1
    k = leaks.holding_neighbours(None, held)
    assert k[:, 0].tolist() == [1, 1, 2, 2, 2, 2] and (k[:, 1] == 0).all()


def test_spread_reaches_only_receptive_non_holders_and_nothing_without_holders():
    adj = _star_gadgets(3, 1)
    held = np.zeros((4, 1), bool)
    held[0, 0] = True
    receptive = np.array([True, True, False, True])
    out = leaks.spread(adj, held, receptive, 1.0, np.random.default_rng(0))
    assert out[:, 0].tolist() == [True, True, False, True]
    empty = np.zeros((4, 1), bool)
    assert not leaks.spread(adj, empty, receptive, 1.0, np.random.default_rng(0)).any()
    assert (leaks.spread(adj, held, receptive, 0.0, np.random.default_rng(0)) == held).all()


# ------------------------------------------------------------------- decay


@pytest.mark.parametrize("h", [1.0, 3.0, 5.0])
def test_half_the_leaks_survive_a_half_life(h):
    assert leaks.survival(h) ** h == pytest.approx(0.5)
    rng = np.random.default_rng(int(h))
    held = np.ones((200, 100), bool)
    rounds = int(h)
    for _ in range(rounds):
        held = leaks.decay(held, h, rng)
    assert _within(int(held.sum()), 20_000, 0.5)


def test_half_life_zero_drops_every_leak_and_draws_nothing():
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    assert leaks.survival(0.0) == 0.0
    assert not leaks.decay(np.ones((5, 3), bool), 0.0, rng).any()
    assert rng.bit_generator.state == state
