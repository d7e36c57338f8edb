"""One contract test for every registered rule of every family.

A rule is covered the moment it is registered: its parameters, its docstring, its
family's contract and the claims it declares (``sybil_proof``, ``budget_balanced``)
are checked here over random inputs and random valid parameters.
"""

import dataclasses
import inspect
import typing

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from mechanisms.base import (
    ComputeCost,
    FeedMarket,
    ResolvedRound,
    SubmissionSet,
    VerificationInput,
    VerificationOutcome,
)
from mechanisms.registry import load_all
from mechanisms.scoring import (
    correlation_contribution_rows,
    numerai_corr_rows,
    rank_gaussianize_rows,
)

REGISTRIES = load_all()
ALL_RULES = [info for reg in REGISTRIES.values() for info in reg]
KNOWN_CLAIMS = {"sybil_proof", "budget_balanced"}
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _ids(infos):
    return [f"{i.family}:{i.name}" for i in infos]


def rules_of(family=None, claim=None):
    return [
        i
        for i in ALL_RULES
        if (family is None or i.family == family) and (claim is None or claim in i.claims)
    ]


def over(infos):
    return pytest.mark.parametrize("info", infos, ids=_ids(infos))


# --- parameter introspection -------------------------------------------------------


BOUNDS = ("ge", "gt", "le", "lt")


def _bounds_of(obj) -> dict:
    """Bounds (ge/gt/le/lt) carried by a constraint or a FieldInfo and its metadata."""
    out = {k: getattr(obj, k) for k in BOUNDS if getattr(obj, k, None) is not None}
    for m in getattr(obj, "metadata", None) or []:
        out |= _bounds_of(m)
    return out


def _walk(tp) -> tuple[set, dict]:
    """(leaf types, bounds) of an annotation, through Optional/Union and Annotated."""
    if typing.get_origin(tp) is typing.Annotated:
        leaves, bounds = _walk(typing.get_args(tp)[0])
        for m in tp.__metadata__:
            bounds |= _bounds_of(m)
        return leaves, bounds
    args = typing.get_args(tp)
    if not args:
        return {tp}, {}
    leaves, bounds = set(), {}
    for a in args:
        sub_leaves, sub_bounds = _walk(a)
        leaves |= sub_leaves
        bounds |= sub_bounds
    return leaves, bounds


def field_spec(params_type, name):
    """(is_numeric, bounds, is_optional, description) of one Params field."""
    finfo = params_type.__pydantic_fields__[name]
    leaves, bounds = _walk(finfo.annotation)
    bounds |= _bounds_of(finfo)
    numeric = bool(leaves & {int, float}) and bool not in leaves
    return numeric, bounds, type(None) in leaves, finfo.description


def params_strategy(info):
    """Random valid parameters of a rule, drawn inside each field's bounds."""
    P = info.params_type
    draws = {}
    for f in dataclasses.fields(P):
        numeric, b, optional, _ = field_spec(P, f.name)
        if not numeric:
            continue
        lo = b.get("ge", b.get("gt"))
        hi = b.get("le", b.get("lt"))
        value = st.floats(
            min_value=float(lo),
            max_value=float(hi),
            exclude_min="gt" in b,
            exclude_max="lt" in b,
            allow_nan=False,
        )
        draws[f.name] = st.one_of(st.none(), value) if optional else value
    return st.fixed_dictionaries(draws).map(lambda kw: info.cls(P(**kw)))


# --- parameters and docstrings -----------------------------------------------------


def test_every_family_has_a_rule():
    for family, reg in REGISTRIES.items():
        assert reg.names(), f"{family} has no registered rule"


@over(ALL_RULES)
def test_params_is_a_frozen_dataclass_with_defaults(info):
    P = info.params_type
    assert dataclasses.is_dataclass(P)
    assert P.__dataclass_params__.frozen
    p = P()  # every field has a default
    for f in dataclasses.fields(P):
        assert f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(p, f.name, getattr(p, f.name))
    assert info.defaults() == {f.name: getattr(p, f.name) for f in dataclasses.fields(P)}


@over(ALL_RULES)
def test_params_fields_are_described_and_bounded(info):
    P = info.params_type
    for f in dataclasses.fields(P):
        numeric, bounds, _, description = field_spec(P, f.name)
        assert description and description.strip(), f"{info.name}.{f.name} lacks a description"
        if numeric:
            assert {"ge", "gt"} & bounds.keys(), f"{info.name}.{f.name} has no lower bound"
            assert {"le", "lt"} & bounds.keys(), f"{info.name}.{f.name} has no upper bound"


@over(ALL_RULES)
def test_unknown_params_are_rejected(info):
    with pytest.raises(ValidationError, match="nope"):
        info.params_type(nope=1)
    with pytest.raises(ValidationError):
        REGISTRIES[info.family].build(info.name, {"nope": 1})


@over(ALL_RULES)
def test_build_validates_params_by_name(info):
    reg = REGISTRIES[info.family]
    rule = reg.build(info.name, {})
    assert isinstance(rule, info.cls)
    assert rule.params == info.params_type()
    with pytest.raises(ValidationError) as exc:
        reg.build(info.name, {"nope": 1})
    assert any("nope" in map(str, err["loc"]) for err in exc.value.errors())


@over(ALL_RULES)
def test_docstring_has_summary_formula_and_source(info):
    doc = inspect.getdoc(info.cls) or ""
    assert info.summary, f"{info.name} has no one-line summary"
    assert len(doc.splitlines()) > 2, f"{info.name} docstring has only a summary"
    assert "source:" in doc.lower(), f"{info.name} docstring names no source"
    assert info.claims <= KNOWN_CLAIMS, f"{info.name} claims something no test checks"


# --- claims ------------------------------------------------------------------------


@st.composite
def rounds(draw):
    """Random round inputs: predictions (n, A), target (A,), stakes (n,), budget.

    Values are distinct so that most draws have non-zero scores (a constant row or
    target scores 0 and would make the claims hold trivially). Stakes below 1e-6
    tokens are set to 0: a subnormal stake split k ways underflows to 0, which says
    nothing about a rule.
    """
    n = draw(st.integers(1, 6))
    A = draw(st.integers(2, 8))
    values = st.floats(-1, 1, allow_nan=False, width=32)
    P = draw(hnp.arrays(float, (n, A), elements=values, unique=True))
    target = draw(hnp.arrays(float, (A,), elements=values, unique=True))
    stakes = draw(hnp.arrays(float, (n,), elements=st.floats(0.0, 1e4)))
    stakes[stakes < 1e-6] = 0.0
    budget = draw(st.floats(0.0, 1e5))
    return P, target, stakes, budget


def resolve(P, target, stakes, budget, weights=None, meta=None):
    """The ResolvedRound the engine would build (stake-weighted metamodel)."""
    if weights is None:
        total = stakes.sum()
        weights = stakes / total if total > 0 else np.full(len(stakes), 1 / len(stakes))
    if meta is None:
        meta = weights @ rank_gaussianize_rows(P)
    return ResolvedRound(
        predictions=P,
        target=target,
        stakes=stakes,
        meta=meta,
        weights=weights,
        corr=numerai_corr_rows(P, target),
        mmc=correlation_contribution_rows(P, meta, target),
        budget=budget,
    )


@over(rules_of("reward", claim="sybil_proof"))
@SETTINGS
@given(data=st.data(), inputs=rounds())
def test_sybil_proof_claim(info, data, inputs):
    rule = data.draw(params_strategy(info))
    P, target, stakes, budget = inputs
    n = len(stakes)
    i = data.draw(st.integers(0, n - 1))
    k = data.draw(st.integers(2, 5))
    r = resolve(P, target, stakes, budget)
    # Submission i split into k identical submissions, each with stake s_i / k. The
    # metamodel is mathematically unchanged, so it is reused as is.
    rep = np.ones(n, dtype=int)
    rep[i] = k
    split_stakes = np.repeat(stakes, rep)
    split_stakes[i : i + k] = stakes[i] / k
    split_weights = np.repeat(r.weights, rep)
    split_weights[i : i + k] = r.weights[i] / k
    r_split = resolve(
        np.repeat(P, rep, axis=0), target, split_stakes, budget, split_weights, r.meta
    )
    before = rule.payouts(r)
    after = rule.payouts(r_split)
    assert after.shape == (n + k - 1,)
    scale = 1e-9 * (1 + np.abs(before).sum() + budget)
    assert after[i : i + k].sum() == pytest.approx(before[i], abs=scale)
    assert after.sum() == pytest.approx(before.sum(), abs=scale)


@over(rules_of("reward", claim="budget_balanced"))
@SETTINGS
@given(data=st.data(), inputs=rounds())
def test_budget_balanced_claim(info, data, inputs):
    rule = data.draw(params_strategy(info))
    out = rule.payouts(resolve(*inputs))
    budget = inputs[3]
    assert out[out > 0].sum() <= budget * (1 + 1e-12) + 1e-9


# --- family contracts --------------------------------------------------------------


@over(rules_of("reward"))
@SETTINGS
@given(data=st.data(), inputs=rounds())
def test_reward_contract(info, data, inputs):
    rule = data.draw(params_strategy(info))
    out = rule.payouts(resolve(*inputs))
    assert out.shape == (len(inputs[2]),)
    assert np.isfinite(out).all()


@over(rules_of("slashing"))
@SETTINGS
@given(
    data=st.data(),
    pairs=st.lists(st.tuples(st.floats(-1e6, 1e6, allow_nan=False), st.floats(0, 1e6)), max_size=8),
)
def test_slashing_burns_within_stake(info, data, pairs):
    rule = data.draw(params_strategy(info))
    payouts = np.array([p for p, _ in pairs], dtype=float)
    stakes = np.array([s for _, s in pairs], dtype=float)
    burned = rule.slash(payouts, stakes)
    assert burned.shape == stakes.shape
    assert (burned >= 0).all() and (burned <= stakes).all()
    assert (burned[payouts >= 0] == 0).all()


@over(rules_of("aggregation"))
@SETTINGS
@given(
    data=st.data(),
    stakes=st.lists(st.one_of(st.just(0.0), st.floats(1e-6, 1e9)), max_size=10),
)
def test_aggregation_weights_are_a_distribution(info, data, stakes):
    rule = data.draw(params_strategy(info))
    s = np.array(stakes, dtype=float)
    w = rule.weights(SubmissionSet(stakes=s, trailing_corr=np.zeros(len(s))))
    assert w.shape == s.shape
    assert (w >= 0).all()
    if len(s):
        assert w.sum() == pytest.approx(1.0, abs=1e-12)


@over(rules_of("pricing"))
@SETTINGS
@given(data=st.data(), prices=st.lists(st.floats(1e-6, 1e6), min_size=1, max_size=8))
def test_pricing_contract(info, data, prices):
    rule = data.draw(params_strategy(info))
    lp = np.array(prices)
    out = rule.prices(
        FeedMarket(list_prices=lp, current=lp.copy(), demand=np.zeros(len(lp), dtype=int))
    )
    assert out.shape == lp.shape
    assert (out > 0).all() and np.isfinite(out).all()


@over(rules_of("verification"))
@SETTINGS
@given(data=st.data(), did_work=st.lists(st.booleans(), max_size=8))
def test_verification_contract(info, data, did_work):
    rule = data.draw(params_strategy(info))
    n = len(did_work)
    v = VerificationInput(
        did_work=np.array(did_work, dtype=bool), deposits=np.ones(n), steps=np.full(n, 100)
    )
    out = rule.verify(v, np.random.default_rng(0))
    assert isinstance(out, VerificationOutcome)
    assert out.caught.shape == out.checked.shape == out.fees.shape == (n,)
    assert out.caught.dtype == bool and out.checked.dtype == bool
    assert not (out.caught & ~out.checked).any()
    assert (out.fees >= 0).all()


@over(rules_of("privacy"))
@SETTINGS
@given(data=st.data(), rows=st.integers(0, 10**6), features=st.integers(0, 10**3))
def test_privacy_contract(info, data, rows, features):
    assert isinstance(info.cls.__dict__.get("leaks"), bool), "privacy rules declare leaks"
    rule = data.draw(params_strategy(info))
    cost = rule.training_cost(rows, features)
    assert isinstance(cost, ComputeCost)
    assert min(cost.seconds, cost.bytes_sent, cost.fee) >= 0


@over(rules_of("submission"))
def test_submission_contract(info):
    rule = info.cls(info.params_type())
    assert isinstance(rule.visible_before_close(), bool)
