"""A deliberately broken reward rule is caught by the shipped suite.

``numerai_mmc_is_corr`` is Numerai's payout with its MMC term replaced by plain
correlation with the target, so a copy of the metamodel is paid as well as the
metamodel scores. Registered in this process only (``--workers 1`` runs in-process),
it is put in place of ``numerai`` under the shipped property "MMC pays a copy of the
metamodel nothing" (scenarios/properties/essay.yaml, read from the file, at its quick
size with 3 seeds): the check reports the property violated and exits 1, while the
unbroken rule passes with exit 0.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import pytest
import yaml

from analysis.properties import run_check
from mechanisms.base import ResolvedRound
from mechanisms.registry import REWARD, UnknownRuleError
from mechanisms.reward import Numerai

ROOT = Path(__file__).resolve().parents[2]
ESSAY = ROOT / "scenarios" / "properties" / "essay.yaml"
PROPERTY = "MMC pays a copy of the metamodel nothing"
BROKEN = "numerai_mmc_is_corr"


class MmcIsCorr(Numerai):
    """Numerai's payout with MMC replaced by CORR (broken on purpose: it pays copies)."""

    def payouts(self, r: ResolvedRound) -> np.ndarray:
        return super().payouts(dataclasses.replace(r, mmc=np.asarray(r.corr)))


@pytest.fixture
def broken_rule():
    REWARD.register(BROKEN)(MmcIsCorr)
    try:
        yield BROKEN
    finally:
        REWARD.unregister(BROKEN)


def _shipped_property(tmp_path: Path, rule: str) -> Path:
    """The shipped property, with the scenario's reward rule replaced by ``rule``."""
    essay = yaml.safe_load(ESSAY.read_text(encoding="utf-8"))
    (prop,) = [p for p in essay["properties"] if p["name"] == PROPERTY]
    # the scenario's own weights (w_corr 0, w_mmc 2) are kept: only the rule changes
    overrides = {**prop.get("overrides", {}), "mechanisms.reward.name": rule}
    overrides.update({"mechanisms.reward.w_corr": 0.0, "mechanisms.reward.w_mmc": 2.0})
    f = tmp_path / f"{rule}.yaml"
    f.write_text(
        yaml.safe_dump(
            {"defaults": essay["defaults"], "properties": [{**prop, "overrides": overrides}]},
            sort_keys=False,
        ),
        encoding="utf-8",
    )
    return f


def _check(f: Path) -> tuple[int, str]:
    out = io.StringIO()
    code = run_check([str(f)], quick=True, seeds=3, workers=1, progress=False, stdout=out)
    return code, out.getvalue()


def test_the_unbroken_rule_passes(tmp_path):
    code, report = _check(_shipped_property(tmp_path, "numerai"))
    assert code == 0, report
    assert "1 properties: 1 as expected" in report


def test_a_rule_that_pays_copies_is_caught(tmp_path, broken_rule):
    code, report = _check(_shipped_property(tmp_path, broken_rule))
    assert code == 1, report
    assert "NOT as expected" in report and "FAIL" in report
    assert f"{PROPERTY}: violated" in report
    # the report says how to reproduce it, with the broken rule named
    assert f"--set mechanisms.reward.name={broken_rule}" in report


def test_the_broken_rule_is_gone_afterwards(broken_rule):
    assert broken_rule in REWARD
    REWARD.unregister(broken_rule)
    assert broken_rule not in REWARD
    with pytest.raises(UnknownRuleError, match=broken_rule):
        REWARD.unregister(broken_rule)
    REWARD.register(broken_rule)(MmcIsCorr)  # the fixture removes it again
