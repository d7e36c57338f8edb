"""The shipped comparison sweeps name valid scenarios at every point of their grid."""

from __future__ import annotations

import math
from importlib import resources

import pytest
import yaml

from mechanisms.registry import load_all
from sim.config import load_scenario
from sim.sweep import KEYS, load_sweep

FILES = sorted(
    p.name for p in resources.files("scenarios.sweeps").iterdir() if p.name.endswith(".yaml")
)


def test_every_family_has_a_comparison():
    families = {f.removeprefix("compare_").removesuffix(".yaml") for f in FILES}
    expected = set(load_all()) - {"privacy"}  # privacy rules come with the secure-computation work
    expected = {"rewards" if f == "reward" else f for f in expected}
    assert expected <= families


@pytest.mark.parametrize("name", FILES)
def test_sweep_points_are_valid_scenarios(name):
    text = (resources.files("scenarios.sweeps") / name).read_text(encoding="utf-8")
    assert text.startswith("#"), "each sweep file opens with a comment saying what it asks"
    raw = yaml.safe_load(text)
    assert set(raw) <= set(KEYS)
    spec = load_sweep(name.removesuffix(".yaml"))  # validates the scenario at every point
    assert spec.design == raw.get("design", "grid") and spec.seeds >= 1
    assert spec.n_points >= 2
    if spec.design == "grid":
        sizes = [len(v) for v in raw["vary"].values()]
        assert spec.n_points == math.prod(sizes)
    for i in range(spec.n_points):
        sc = load_scenario(raw["base"], spec.point_overrides(i))
        for k, v in spec.point_params(i).items():
            assert sc.get(k) == v
