"""Aggregation strategies against hand-computed values, plus properties (hypothesis)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.strategies import ClientUpdate, FedAsync, FedAvg, FedBuff, make_strategy
from server.strategies.fedasync import mix
from server.strategies.robust import coordinate_median, trimmed_mean
from server.strategies.staleness import Constant, Hinge, Polynomial, make_staleness


def upd(params, base=None, n=10, s=0, t=0.0):
    params = np.asarray(params, np.float32)
    base = np.zeros_like(params) if base is None else np.asarray(base, np.float32)
    return ClientUpdate(params=params, base=base, num_samples=n, staleness=s, received=t)


# --- staleness functions, hand-computed -----------------------------------------------

def test_staleness_values():
    assert Constant()(7) == 1.0
    assert Polynomial(a=0.5)(3) == pytest.approx(0.5)        # (3 + 1) ** -0.5
    assert Polynomial(a=1.0)(0) == 1.0
    assert Hinge(a=10, b=4)(4) == 1.0
    assert Hinge(a=10, b=4)(6) == pytest.approx(1 / 21)      # 1 / (10 * 2 + 1)
    with pytest.raises(ValueError, match="unknown staleness"):
        make_staleness("cosine")
    with pytest.raises(ValueError):
        Hinge(a=0)


@given(st.sampled_from(["constant", "polynomial", "hinge"]), st.integers(0, 500), st.integers(0, 500))
def test_staleness_weights_never_increase(name, s1, s2):
    f = make_staleness(name)
    lo, hi = sorted((s1, s2))
    assert 0 < f(hi) <= f(lo) <= 1


# --- FedAsync ----------------------------------------------------------------------

def test_fedasync_hand_computed():
    s = FedAsync(alpha=0.5, staleness="polynomial", staleness_params={"a": 1.0})
    x = np.array([0.0, 2.0], np.float32)
    out = s.aggregate(x, [upd([4.0, 6.0], s=1)])               # a_t = 0.5 * 2**-1 = 0.25
    np.testing.assert_allclose(out.params, [1.0, 3.0])
    assert out.weights == [0.25]


def test_fedasync_sample_weighting_and_clipping():
    s = FedAsync(alpha=1.0, staleness="constant", weight_by_samples=True, reference_samples=100)
    out = s.aggregate(np.zeros(1, np.float32), [upd([8.0], n=25)])
    np.testing.assert_allclose(out.params, [2.0])              # a = 25 / 100
    clipped = FedAsync(alpha=1.0, staleness="constant", clip_norm=5.0)
    out = clipped.aggregate(np.zeros(2, np.float32), [upd([30.0, 40.0])])  # norm 50 -> 5
    np.testing.assert_allclose(out.params, [3.0, 4.0], rtol=1e-6)


@settings(max_examples=60)
@given(st.lists(st.floats(-100, 100, width=32), min_size=1, max_size=20),
       st.lists(st.floats(-100, 100, width=32), min_size=1, max_size=20),
       st.floats(0.0, 1.0))
def test_mix_is_a_convex_combination(xs, ys, a):
    n = min(len(xs), len(ys))
    x, y = np.array(xs[:n], np.float32), np.array(ys[:n], np.float32)
    out = mix(x, y, a)
    lo, hi = np.minimum(x, y), np.maximum(x, y)
    tol = 1e-4 * (1 + np.abs(x) + np.abs(y))
    assert np.all(out >= lo - tol) and np.all(out <= hi + tol)
    if a == 0:
        np.testing.assert_array_equal(out, x)       # weight 0 leaves the model unchanged


@given(st.lists(st.floats(-1e3, 1e3, width=32), min_size=1, max_size=20))
def test_constant_weight_one_replaces_the_model(ys):
    y = np.array(ys, np.float32)
    s = FedAsync(alpha=1.0, staleness="constant")
    out = s.aggregate(np.full_like(y, 7.0), [upd(y, s=5)])
    np.testing.assert_allclose(out.params, y, atol=1e-3)


def test_fedasync_rejects_bad_parameters():
    for kwargs in ({"alpha": 0}, {"alpha": 1.5}, {"staleness": "nope"}, {"clip_norm": -1}):
        with pytest.raises(ValueError):
            FedAsync(**kwargs)


# --- FedBuff -----------------------------------------------------------------------

def test_fedbuff_hand_computed():
    s = FedBuff(buffer_size=2, server_lr=1.0, staleness="polynomial", staleness_params={"a": 1.0})
    base = np.array([1.0, 1.0], np.float32)
    pending = [upd([3.0, 1.0], base=base, s=0), upd([1.0, 5.0], base=base, s=1)]
    assert not s.ready(pending[:1], 0) and s.ready(pending, 0)
    out = s.aggregate(np.array([10.0, 10.0], np.float32), pending)
    # deltas (2, 0) * 1 and (0, 4) * 0.5 -> mean (1, 1)
    np.testing.assert_allclose(out.params, [11.0, 11.0])


@settings(max_examples=40)
@given(st.permutations(range(4)), st.sampled_from(["mean", "median", "trimmed_mean"]))
def test_fedbuff_is_order_independent(order, combiner):
    rng = np.random.default_rng(1)
    pending = [upd(rng.normal(size=5), base=np.zeros(5), s=i) for i in range(4)]
    s = FedBuff(buffer_size=4, combiner=combiner, trim=0.25)
    x = np.ones(5, np.float32)
    a = s.aggregate(x, pending).params
    b = s.aggregate(x, [pending[i] for i in order]).params
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


# --- FedAvg ------------------------------------------------------------------------

def test_fedavg_weighted_by_samples():
    s = FedAvg(min_clients=2)
    base = np.zeros(2, np.float32)
    pending = [upd([1.0, 0.0], base=base, n=30), upd([0.0, 1.0], base=base, n=10)]
    out = s.aggregate(base, pending)
    np.testing.assert_allclose(out.params, [0.75, 0.25])
    assert out.weights == [0.75, 0.25]


def test_fedavg_round_closes_at_min_clients_or_deadline():
    s = FedAvg(min_clients=3, deadline_seconds=10)
    two = [upd([1.0], t=100.0), upd([2.0], t=103.0)]
    assert not s.ready(two, now=105.0)
    assert s.ready(two, now=110.0)
    assert not s.ready([], now=1e9)
    assert s.ready(two + [upd([3.0], t=104.0)], now=104.0)


@settings(max_examples=40)
@given(st.permutations(range(3)))
def test_fedavg_is_order_independent(order):
    rng = np.random.default_rng(2)
    pending = [upd(rng.normal(size=4), n=n) for n in (5, 10, 20)]
    s = FedAvg(min_clients=3)
    x = np.zeros(4, np.float32)
    np.testing.assert_allclose(s.aggregate(x, pending).params,
                               s.aggregate(x, [pending[i] for i in order]).params, rtol=1e-6)


# --- robust combiners ----------------------------------------------------------------

def test_median_and_trimmed_mean_ignore_an_outlier():
    rows = np.array([[1.0], [2.0], [3.0], [4.0], [1000.0]], np.float32)
    assert coordinate_median(rows)[0] == 3.0
    assert trimmed_mean(rows, trim=0.2)[0] == pytest.approx(3.0)   # drop 1 and 1000
    s = FedAvg(min_clients=5, combiner="median")
    out = s.aggregate(np.zeros(1, np.float32), [upd(r) for r in rows])
    assert out.params[0] == 3.0


def test_make_strategy_by_name():
    assert isinstance(make_strategy({"name": "fedbuff", "buffer_size": 3}), FedBuff)
    with pytest.raises(ValueError, match="unknown aggregator"):
        make_strategy({"name": "fedprox"})
    with pytest.raises(ValueError, match="bad parameters for fedasync"):
        make_strategy({"name": "fedasync", "beta": 3})


def test_clipping_applies_to_buffered_and_synchronous_strategies():
    base = np.zeros(2, np.float32)
    big = upd([300.0, 400.0], base=base)          # norm 500
    small = upd([0.3, 0.4], base=base)            # norm 0.5, untouched
    buff = FedBuff(buffer_size=2, staleness="constant", clip_norm=5.0).aggregate(base, [big, small])
    np.testing.assert_allclose(buff.params, [(3.0 + 0.3) / 2, (4.0 + 0.4) / 2], rtol=1e-6)
    avg = FedAvg(min_clients=2, clip_norm=5.0).aggregate(base, [big, small])
    np.testing.assert_allclose(avg.params, [(3.0 + 0.3) / 2, (4.0 + 0.4) / 2], rtol=1e-6)
