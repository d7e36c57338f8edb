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
    AttributionInput,
    AuctionInput,
    AuctionOutcome,
    ComputeCost,
    FeedMarket,
    HostingInput,
    HostingOutcome,
    ResolvedRound,
    SlashInput,
    SubmissionSet,
    TrainingJob,
    VerificationInput,
    VerificationOutcome,
)
from mechanisms.registry import load_all
from mechanisms.scoring import (
    correlation_contribution_rows,
    numerai_corr_rows,
    rank_gaussianize_rows,
)
from mechanisms.slashing import share_among_positive

REGISTRIES = load_all()
ALL_RULES = [info for reg in REGISTRIES.values() for info in reg]
KNOWN_CLAIMS = {"sybil_proof", "budget_balanced", "only_on_loss"}
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


def _literal_choices(tp) -> tuple:
    """The values of a ``Literal[...]`` annotation (through Annotated), or ()."""
    if typing.get_origin(tp) is typing.Annotated:
        return _literal_choices(typing.get_args(tp)[0])
    if typing.get_origin(tp) is typing.Literal:
        return typing.get_args(tp)
    return ()


def _is_int_field(params_type, name) -> bool:
    leaves, _ = _walk(params_type.__pydantic_fields__[name].annotation)
    return int in leaves and float not in leaves


def params_strategy(info):
    """Random valid parameters of a rule, drawn inside each field's bounds.

    Floats are drawn in their bounds, ints as integers in their bounds, and a
    ``Literal`` field takes each of its values.
    """
    P = info.params_type
    draws = {}
    for f in dataclasses.fields(P):
        numeric, b, optional, _ = field_spec(P, f.name)
        choices = _literal_choices(P.__pydantic_fields__[f.name].annotation)
        if choices:
            draws[f.name] = st.sampled_from(choices)
            continue
        if not numeric:
            continue
        lo = b.get("ge", b.get("gt"))
        hi = b.get("le", b.get("lt"))
        if _is_int_field(P, f.name):
            value = st.integers(min_value=int(lo) + ("gt" in b), max_value=int(hi) - ("lt" in b))
        else:
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


SLASH_CASES = st.lists(
    st.tuples(
        st.floats(-1e6, 1e6, allow_nan=False),  # payout
        st.floats(0, 1e6),  # stake
        st.floats(-1, 1),  # score (CORR)
        st.floats(-1, 1),  # contribution (MMC)
    ),
    max_size=8,
)


def _slash_input(cases):
    cols = [np.array([c[j] for c in cases], dtype=float) for j in range(4)]
    return SlashInput(payouts=cols[0], stakes=cols[1], scores=cols[2], contributions=cols[3])


@over(rules_of("slashing"))
@SETTINGS
@given(data=st.data(), cases=SLASH_CASES)
def test_slashing_takes_within_stake(info, data, cases):
    rule = data.draw(params_strategy(info))
    s = _slash_input(cases)
    taken = rule.slash(s)
    assert taken.shape == s.stakes.shape
    assert np.isfinite(taken).all()
    assert (taken >= 0).all() and (taken <= s.stakes).all()


@over(rules_of("slashing", claim="only_on_loss"))
@SETTINGS
@given(data=st.data(), cases=SLASH_CASES)
def test_only_on_loss_claim(info, data, cases):
    rule = data.draw(params_strategy(info))
    s = _slash_input(cases)
    taken = rule.slash(s)
    assert (taken[s.payouts >= 0] == 0).all()


@over(rules_of("slashing"))
def test_slashing_declares_destination_and_cascade(info):
    assert info.cls.__dict__.get("destination") in {"burn", "positive_contributors"}
    assert "cascade_to_providers" in info.defaults()


@SETTINGS
@given(cases=SLASH_CASES)
def test_redistribution_conserves_what_is_taken(cases):
    s = _slash_input(cases)
    taken = np.minimum(np.maximum(-s.payouts, 0), s.stakes)
    got = share_among_positive(taken, s.payouts)
    assert got.shape == taken.shape and (got >= 0).all()
    assert (got[s.payouts <= 0] == 0).all()
    if (s.payouts > 0).any():
        assert got.sum() == pytest.approx(taken.sum(), rel=1e-9, abs=1e-9)
    else:
        assert got.sum() == 0


@over(rules_of("aggregation"))
@SETTINGS
@given(
    data=st.data(),
    stakes=st.lists(st.one_of(st.just(0.0), st.floats(1e-6, 1e9)), max_size=10),
)
def test_aggregation_weights_are_a_distribution(info, data, stakes):
    rule = data.draw(params_strategy(info))
    s = np.array(stakes, dtype=float)
    n = len(s)
    w = rule.weights(SubmissionSet(stakes=s, trailing_corr=np.zeros(n)))
    assert w.shape == s.shape
    assert (w >= 0).all()
    if n:
        assert w.sum() == pytest.approx(1.0, abs=1e-12)
    # with every optional field drawn (trailing scores, prices, score variances)
    corr = st.floats(-1, 1)
    full = SubmissionSet(
        stakes=s,
        trailing_corr=data.draw(hnp.arrays(float, n, elements=corr)),
        prices=data.draw(st.one_of(st.none(), hnp.arrays(float, n, elements=st.floats(0, 1e6)))),
        score_var=data.draw(st.one_of(st.none(), hnp.arrays(float, n, elements=st.floats(0, 1)))),
    )
    w = rule.weights(full)
    assert w.shape == s.shape
    assert np.isfinite(w).all() and (w >= 0).all()
    if n:
        assert w.sum() == pytest.approx(1.0, abs=1e-12)


@over(rules_of("pricing"))
@SETTINGS
@given(data=st.data(), prices=st.lists(st.floats(1e-6, 1e6), min_size=1, max_size=8))
def test_pricing_contract(info, data, prices):
    assert isinstance(info.cls.__dict__.get("auction"), bool), "pricing rules declare auction"
    rule = data.draw(params_strategy(info))
    lp = np.array(prices)
    P = len(lp)
    for market in (
        FeedMarket(list_prices=lp, current=lp.copy(), demand=np.zeros(P, dtype=int)),
        FeedMarket(
            list_prices=lp,
            current=lp * data.draw(hnp.arrays(float, P, elements=st.floats(0.1, 10))),
            demand=data.draw(hnp.arrays(int, P, elements=st.integers(0, 50))),
            round=3,
            curation=data.draw(hnp.arrays(float, P, elements=st.floats(0, 1e3))),
            capacity=data.draw(
                st.one_of(st.none(), hnp.arrays(int, P, elements=st.integers(0, 9)))
            ),
        ),
    ):
        out = rule.prices(market)
        assert out.shape == lp.shape
        assert (out > 0).all() and np.isfinite(out).all()


@st.composite
def auctions(draw):
    """Random sealed bids (some 0 = no bid), budgets, slots and reserves."""
    n = draw(st.integers(0, 7))
    P = draw(st.integers(1, 5))
    bid = st.one_of(st.just(0.0), st.floats(0.01, 100), st.sampled_from([1.0, 2.0, 5.0]))
    return AuctionInput(
        bids=draw(hnp.arrays(float, (n, P), elements=bid)),
        budgets=draw(hnp.arrays(float, n, elements=st.floats(0, 300))),
        slots=draw(hnp.arrays(int, P, elements=st.integers(0, 4))),
        reserve=draw(hnp.arrays(float, P, elements=st.floats(0, 10))),
    )


@over([i for i in rules_of("pricing") if i.cls.__dict__.get("auction")])
@SETTINGS
@given(data=st.data(), a=auctions())
def test_auction_contract(info, data, a):
    rule = data.draw(params_strategy(info))
    out = rule.clear(a)
    assert isinstance(out, AuctionOutcome)
    assert out.won.shape == out.payments.shape == a.bids.shape
    assert out.won.dtype == bool
    assert (out.payments[~out.won] == 0).all()
    won_bids = a.bids[out.won]
    paid = out.payments[out.won]
    assert (paid >= np.broadcast_to(a.reserve, a.bids.shape)[out.won]).all()  # reserve
    assert (paid <= won_bids).all()  # nobody pays more than it bid
    assert (won_bids > 0).all()
    assert (out.won.sum(axis=0) <= a.slots).all()  # slots
    assert (out.payments.sum(axis=1) <= a.budgets + 1e-9).all()  # budgets
    # one price per feed: every winner of a feed pays the same
    for p in range(a.bids.shape[1]):
        assert np.unique(out.payments[out.won[:, p], p]).size <= 1


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
@given(
    data=st.data(),
    rows=st.integers(1, 10**6),
    feeds=st.lists(st.integers(0, 8), max_size=6),
    feed_dim=st.integers(1, 16),
    assets=st.integers(1, 5000),
)
def test_privacy_contract(info, data, rows, feeds, feed_dim, assets):
    assert isinstance(info.cls.__dict__.get("leaks", getattr(info.cls, "leaks", None)), bool)
    assert isinstance(getattr(info.cls, "secure", None), bool), "privacy rules declare secure"
    rule = data.draw(params_strategy(info))
    job = TrainingJob(rows, np.array(feeds, dtype=np.int64), feed_dim, assets, ridge=0.1)
    cost = rule.training_cost(job)
    assert isinstance(cost, ComputeCost)
    for name in ("seconds", "bytes_sent", "fee", "compute_seconds"):
        v = np.asarray(getattr(cost, name))
        assert v.shape == (len(feeds),), name
        assert np.isfinite(v).all() and (v >= 0).all(), name
        assert (v[job.feeds == 0] == 0).all(), f"{name}: a trainer with no feeds costs nothing"
    x = np.random.default_rng(0).standard_normal((2, 3, feed_dim))
    assert rule.perturb(x, np.random.default_rng(1)).shape == x.shape


@over(rules_of("submission"))
@SETTINGS
@given(data=st.data(), n=st.integers(0, 20), seed=st.integers(0, 2**32 - 1))
def test_submission_contract(info, data, n, seed):
    rule = data.draw(params_strategy(info))
    assert isinstance(rule.visible_before_close(), bool)
    ok = rule.reveal_outcome(n, np.random.default_rng(seed))
    assert ok.shape == (n,) and ok.dtype == bool
    again = rule.reveal_outcome(n, np.random.default_rng(seed))
    np.testing.assert_array_equal(ok, again)  # a function of the generator's state only
    if rule.visible_before_close():
        assert ok.all(), "without a reveal step every submission counts"


@over(rules_of("hosting"))
@SETTINGS
@given(
    data=st.data(),
    items=st.lists(st.tuples(st.floats(0, 1e12), st.booleans()), max_size=8),
    seed=st.integers(0, 2**32 - 1),
)
def test_hosting_contract(info, data, items, seed):
    rule = data.draw(params_strategy(info))
    h = HostingInput(
        sizes=np.array([s for s, _ in items], dtype=float),
        pinned=np.array([p for _, p in items], dtype=bool),
    )
    out = rule.host(h, np.random.default_rng(seed))
    assert isinstance(out, HostingOutcome)
    assert out.fees.shape == out.available.shape == (len(items),)
    assert out.available.dtype == bool
    assert np.isfinite(out.fees).all() and (out.fees >= 0).all()
    again = rule.host(h, np.random.default_rng(seed))
    np.testing.assert_array_equal(out.fees, again.fees)
    np.testing.assert_array_equal(out.available, again.available)


@st.composite
def attributions(draw):
    """Random models over random feeds: picks (-1 = unused), weights, feeds, target."""
    n = draw(st.integers(0, 6))
    K = draw(st.integers(1, 5))
    P = draw(st.integers(1, 4))
    A = draw(st.integers(2, 8))
    k = draw(st.integers(1, 3))
    values = st.floats(-1, 1, allow_nan=False, width=32)
    return AttributionInput(
        picks=draw(hnp.arrays(int, (n, K), elements=st.integers(-1, P - 1))),
        weights=draw(hnp.arrays(float, (n, K * k), elements=values)),
        feeds=draw(hnp.arrays(float, (P, A, k), elements=values)),
        target=draw(hnp.arrays(float, (A,), elements=values)),
    )


@over(rules_of("attribution"))
@SETTINGS
@given(data=st.data(), a=attributions())
def test_attribution_shares_split_the_used_slots(info, data, a):
    assert "gain_share" in info.defaults(), "attribution rules carry gain_share"
    rule = data.draw(params_strategy(info))
    shares = rule.attribute(a)
    used = a.picks >= 0
    assert shares.shape == a.picks.shape
    assert np.isfinite(shares).all() and (shares >= 0).all()
    assert (shares[~used] == 0).all()
    rows = used.any(axis=1)
    np.testing.assert_allclose(shares[rows].sum(axis=1), 1.0, rtol=1e-12)
    assert (shares[~rows] == 0).all()
