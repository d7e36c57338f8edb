"""The training window's running X'X, kept by provider slots, against a direct sum."""

import numpy as np

from agents.base import GONE
from sim.config import load_scenario
from sim.model import MarketModel

#: providers leave fast: slots are freed, reused and compacted within the run
CHURN = ["population.providers.count=80", "population.providers.cost_per_round=4"]


def _direct(model: MarketModel) -> tuple[np.ndarray, np.ndarray]:
    """X'X of the rounds the Gram holds and X'y of the window, in slot order, summed
    from the stored rounds. Between steps the Gram is one round ahead of the window:
    it holds the window of the next train phase."""
    window = [u for u, _, _ in model.window]
    held = [u for u, _ in model.gram_rounds]
    assert held == [*window, model.t + 1 - model.lag][-len(held) :]
    zs = np.vstack([model._by_slot(f) for _, f in model.gram_rounds])
    zw = np.vstack([model._by_slot(f) for _, f, _ in model.window])
    y = np.concatenate([w[2] for w in model.window])
    return zs.T @ zs, zw.T @ y


def test_running_gram_equals_the_window_sum_as_providers_come_and_go():
    model = MarketModel(load_scenario("baseline", [*CHURN, "run.rounds=120"]))
    sizes, compacted = [], False
    for t in range(120):
        model.step()
        size = model.slot_owner.size
        compacted |= bool(sizes) and size < sizes[-1]
        sizes.append(size)
        if t % 15 == 14 and model.window:
            g, c = _direct(model)
            upper = np.triu_indices(g.shape[0])
            scale = np.abs(g).max()
            np.testing.assert_allclose(model.gram[upper], g[upper], atol=1e-9 * scale)
            np.testing.assert_allclose(model.xty, c, atol=1e-9 * np.abs(c).max())
    assert compacted, "the scenario should free more than a quarter of the slots at some point"
    # every present provider with history has a slot; departed ones have none
    P = model.providers
    owners = model.slot_owner[model.slot_owner >= 0]
    assert (P.status[owners] != GONE).all()
    assert np.array_equal(model.slot_of[owners], np.flatnonzero(model.slot_owner >= 0))


def test_freed_slots_are_reused_and_start_again_from_zero():
    model = MarketModel(load_scenario("baseline", [*CHURN, "run.rounds=60"]))
    first_owner: dict[int, int] = {}  # slot -> the first provider seen in it
    reused = False
    for _ in range(60):
        size = model.slot_owner.size
        model.step()
        if model.slot_owner.size < size:  # compacted: slots renumbered
            first_owner = {}
        for slot, owner in enumerate(model.slot_owner.tolist()):
            if owner >= 0:
                reused |= first_owner.setdefault(slot, owner) != owner
    assert reused  # a departed provider's slot went to a newcomer
    g, _ = _direct(model)
    upper = np.triu_indices(g.shape[0])
    np.testing.assert_allclose(model.gram[upper], g[upper], atol=1e-9 * np.abs(g).max())


def test_threads_for_the_gram_do_not_change_a_number():
    sc = load_scenario(
        "baseline",
        ["population.providers.count=160", "population.developers.count=120", "run.rounds=12"],
    )
    models = [MarketModel(sc, threads=n) for n in (1, 2)]
    models[1].THREAD_ROWS = 16  # models are fitted in two threads too
    models[1].AHEAD_NORMALS = 1  # and the task's normals are drawn ahead in a thread
    for _ in range(12):
        for m in models:
            m.step()
    one, two = models
    assert one.gram.shape[0] >= 512  # large enough for the threaded path
    assert np.array_equal(np.triu(one.gram), np.triu(two.gram))
    assert np.array_equal(one.forecasters.weights, two.forecasters.weights)
    assert one.model_rows == two.model_rows
