"""The shipped comparison sweeps name valid scenarios at every point of their grid."""

from __future__ import annotations

import itertools
from importlib import resources

import pytest
import yaml

from mechanisms.registry import load_all
from sim.config import load_scenario

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
    spec = yaml.safe_load(text)
    assert set(spec) <= {"base", "overrides", "vary", "design", "seeds"}
    assert spec["design"] == "grid" and spec["seeds"] >= 1
    overrides = list(spec.get("overrides", {}).items())
    keys = list(spec["vary"])
    points = list(itertools.product(*(spec["vary"][k] for k in keys)))
    assert len(points) >= 2
    for values in points:
        sc = load_scenario(spec["base"], [*overrides, *zip(keys, values, strict=True)])
        for k, v in zip(keys, values, strict=True):
            assert sc.get(k) == v
