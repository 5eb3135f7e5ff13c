"""Properties of the maths that keeps one participant from taking over the model: the bound
on how far one aggregation moves the current model (every strategy, any claimed base), the
robust combiners at small sizes, and the client's carry-over of progress onto a newer model."""
from __future__ import annotations

from array import array

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from browser_py.participant import carry_progress
from server.strategies import ClientUpdate, FedAsync, FedAvg, FedBuff
from server.strategies.centered_clipping import centered_clip
from server.strategies.multikrum import multi_krum
from server.strategies.robust import trim_count, trimmed_mean

COMBINERS = ["mean", "median", "trimmed_mean", "multi_krum", "centered_clipping"]
EVERY_STRATEGY = ([lambda: FedAsync(staleness=s) for s in ("constant", "polynomial", "hinge")]
                  + [lambda c=c: FedBuff(buffer_size=1, combiner=c) for c in COMBINERS]
                  + [lambda c=c: FedAvg(min_clients=1, combiner=c) for c in COMBINERS])

finite = st.floats(-1e4, 1e4, allow_nan=False, width=32)


@settings(max_examples=60, deadline=None)
@given(strategy=st.sampled_from(EVERY_STRATEGY), dim=st.integers(1, 6), data=st.data(),
       n=st.integers(1, 5), bound=st.floats(1e-3, 10.0), staleness=st.integers(0, 50))
def test_no_aggregation_moves_the_current_model_further_than_the_bound(strategy, dim, data, n, bound, staleness):
    current = np.array(data.draw(st.lists(finite, min_size=dim, max_size=dim)), np.float32)
    updates = []
    for _ in range(n):  # any claimed base, any parameters, any claimed sample count
        base = np.array(data.draw(st.lists(finite, min_size=dim, max_size=dim)), np.float32)
        params = np.array(data.draw(st.lists(finite, min_size=dim, max_size=dim)), np.float32)
        updates.append(ClientUpdate(params, base, data.draw(st.integers(1, 10**9)), staleness))
    result = strategy().bounded_aggregate(current, updates, bound)
    moved = float(np.linalg.norm(result.params.astype(np.float64) - current))
    # the bound holds up to float32's resolution at the model's values
    resolution = float(np.spacing(np.abs(current).max() + np.float32(1))) * np.sqrt(dim)
    assert moved <= bound * (1 + 1e-5) + resolution


def test_a_stale_base_cannot_drag_fedasync_past_the_bound():
    current = np.full(4, 5.0, np.float32)
    old = np.zeros(4, np.float32)  # an ancient version, "fresh" training from it
    update = ClientUpdate(params=old, base=old, num_samples=10, staleness=0)
    unbounded = FedAsync(alpha=1.0, staleness="constant").aggregate(current, [update]).params
    assert np.linalg.norm(unbounded - current) == pytest.approx(10.0)  # the rollback the bound stops
    bounded = FedAsync(alpha=1.0, staleness="constant").bounded_aggregate(current, [update], 1.0).params
    assert np.linalg.norm(bounded - current) <= 1.0


@pytest.mark.parametrize("n, trim, k", [(1, 0.1, 0), (2, 0.1, 0), (3, 0.1, 1), (5, 0.1, 1), (10, 0.1, 1),
                                        (20, 0.1, 2), (5, 0.45, 2)])
def test_trimmed_mean_trims_at_least_one_whenever_something_is_left(n, trim, k):
    assert trim_count(n, trim) == k


def test_trimmed_mean_of_three_drops_the_attacker():
    rows = np.array([[1.0], [2.0], [1e4]], np.float32)
    assert trimmed_mean(rows, 0.1)[0] == 2.0


def test_multi_krum_leaves_out_the_outlier():
    rows = np.array([[1.0, 1.0], [1.1, 0.9], [0.9, 1.1], [1.0, 1.05], [-50.0, 80.0]], np.float32)
    step, chosen = multi_krum(rows, byzantine=1)
    assert 4 not in chosen and len(chosen) == 4
    np.testing.assert_allclose(step, rows[:4].mean(0), rtol=1e-6)


def test_centered_clipping_bounds_an_outliers_pull():
    honest = np.array([[1.0, 1.0], [1.1, 0.9], [0.9, 1.1], [1.0, 1.05]], np.float32)
    attacked = np.vstack([honest, [[-5000.0, 8000.0]]]).astype(np.float32)
    assert np.linalg.norm(centered_clip(attacked) - honest.mean(0)) < 0.2


@pytest.mark.parametrize("combiner", COMBINERS)
def test_every_combiner_keeps_identical_updates(combiner):
    d = np.array([0.5, -1.0, 2.0], np.float32)
    pending = [ClientUpdate(d, np.zeros(3, np.float32), 10, 0) for _ in range(4)]
    out = FedAvg(min_clients=4, combiner=combiner).aggregate(np.zeros(3, np.float32), pending)
    np.testing.assert_allclose(out.params, d, rtol=1e-6)


def test_bad_robust_settings_are_refused_with_the_field_named():
    with pytest.raises(ValueError, match="trim"):
        FedAvg(combiner="trimmed_mean", trim=0.0)
    with pytest.raises(ValueError, match="combiner"):
        FedBuff(combiner="mode")


# --- the client's carry-over of progress onto a newer global model ------------------------

vectors = st.lists(st.floats(-100, 100, allow_nan=False, width=32), min_size=1, max_size=20)


@given(base=vectors, newer=vectors)
def test_with_no_training_the_update_is_exactly_the_newer_model(base, newer):
    n = min(len(base), len(newer))
    base, newer = array("f", base[:n]), array("f", newer[:n])
    assert carry_progress(base, base, newer) == newer


@given(base=vectors, newer=vectors, progress=vectors)
def test_the_change_sent_is_the_training_progress_and_nothing_of_the_old_model(base, newer, progress):
    n = min(len(base), len(newer), len(progress))
    base, newer = np.array(base[:n], np.float32), np.array(newer[:n], np.float32)
    step = np.array(progress[:n], np.float32) / np.float32(10)
    local = (base + step).astype(np.float32)
    sent = np.array(carry_progress(array("f", local), array("f", base), array("f", newer)), np.float32)
    realised = local.astype(np.float64) - base  # the progress as float32 training left it
    np.testing.assert_allclose(sent - newer.astype(np.float64), realised, atol=1e-4)
    # another starting model with the same progress gives the same update: no trace of ``base``
    other = (base + np.float32(3.0)).astype(np.float32)
    sent_other = np.array(carry_progress(array("f", (other + step).astype(np.float32)), array("f", other),
                                         array("f", newer)), np.float32)
    np.testing.assert_allclose(sent_other, sent, atol=1e-3)
