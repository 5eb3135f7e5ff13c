"""Fixed-budget reporting, without a server: time zero, where learning settles (the last
five evaluated versions), best and time to target, and the small-multiples plot."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments import report
from experiments.config import ConfigError, Clients, Run, load
from experiments.harness import summarise


def _metrics(wall0: float, accuracies: list[float]) -> dict:
    """Version 0 made 75 s before the participants started, then one version per 10 s."""
    versions = []
    for v, acc in enumerate(accuracies):
        created = wall0 - 75 if v == 0 else wall0 + 10 * v
        conf = [[int(100 * acc), 100 - int(100 * acc)], [100 - int(100 * acc), int(100 * acc)]]
        versions.append({"version": v, "created": created,
                         "updates": [] if v == 0 else [{"client": f"p{v % 3}", "staleness": v % 3}],
                         "evaluation": {"accuracy": acc, "loss": 1 - acc, "per_class": [acc, acc],
                                        "confusion": conf}})
    return {"classes": ["a", "b"], "current_version": len(accuracies) - 1, "versions": versions}


def _experiment(tmp_path, budget: str):
    path = tmp_path / "e.toml"
    path.write_text(f'[data]\npartition = "lacks:a/b"\n[clients]\ncpython = 2\n[budget]\n{budget}\n')
    return load(path)


def test_a_run_reports_where_it_settled_not_its_peak(tmp_path):
    exp = _experiment(tmp_path, "seconds = 120\ntarget_accuracy = 0.9")
    assert not exp.stop_at_target  # fixed budget unless asked
    accuracies = [0.1, 0.5, 0.92, 0.7, 0.8, 0.85, 0.8, 0.75, 0.9]  # a peak at v2, then it settles lower
    run = Run("r", {"name": "fedasync"}, Clients(cpython=2))
    result = summarise(exp, run, _metrics(1000.0, accuracies), {"num_parameters": 10}, 1000.0, None)
    f = result["final"]
    assert f["accuracy"] == 0.9 and f["best_accuracy"] == 0.92
    tail = accuracies[-5:]
    assert f["last5"]["mean"] == pytest.approx(sum(tail) / 5) and f["last5"]["count"] == 5
    assert f["last5"]["min"] == 0.75 and f["last5"]["std"] > 0
    assert f["time_to_target"] == 20.0
    assert result["series"][0]["time"] == 0.0  # the initial model exists at time zero, not at -75 s
    assert [p["time"] for p in result["series"][1:3]] == [10.0, 20.0]
    assert len(f["missing_last5"]) == 2 and f["missing_last5"][0]["count"] == 5
    assert [u["client"] for u in result["timeline"][:3]] == ["p1", "p2", "p0"]

    results = {"name": "x", "experiment": {**exp.__dict__, "path": None, "runs": None, "settled_versions": 5},
               "runs": [result, result | {"name": "r2"}], "baselines": {}}
    report.write(json.loads(json.dumps(results, default=str)), tmp_path / "out")
    md = (tmp_path / "out" / "report.md").read_text()
    assert "last 5 (mean ± sd)" in md and "82.0% ± 5.1" in md and "no early stop" in md
    assert (tmp_path / "out" / "accuracy_vs_time.png").read_bytes()[:4] == b"\x89PNG"


def test_stopping_at_the_target_is_an_option_that_needs_a_target(tmp_path):
    assert _experiment(tmp_path, "target_accuracy = 0.9\nstop_at_target = true").stop_at_target
    with pytest.raises(ConfigError, match="needs budget.target_accuracy"):
        _experiment(tmp_path, "stop_at_target = true")


def test_official_test_sets_run_budgets_and_a_published_reference(tmp_path):
    path = tmp_path / "niid.toml"
    path.write_text("""
[data]
dataset = "fashion-mnist"
partition = "dirichlet:0.5"
test_set = "official"
[clients]
cpython = 2
[budget]
seconds = 600
target_accuracy = 0.881
[reference]
source = "NIID-Bench (paper)"
setting = "FedAvg, 50 rounds"
accuracy = 0.881
[[runs]]
name = "fedavg"
aggregator = { name = "fedavg", min_clients = 2 }
budget = { versions = 50 }
[[runs]]
name = "fedasync"
""")
    exp = load(path)
    assert exp.test_set == "official" and exp.reference["accuracy"] == 0.881
    assert exp.budget(exp.runs[0]) == (600.0, 50) and exp.budget(exp.runs[1]) == (600.0, 10**9)
    run = exp.runs[0]
    wall0 = 1000.0
    result = summarise(exp, run, _metrics(wall0, [0.1, 0.5, 0.9, 0.85]), {"num_parameters": 100}, wall0, None)
    assert result["final"]["time_to_target"] == 20.0
    assert result["final"]["bytes_to_target"] == 2 * 400 and result["final"]["updates_to_target"] == 2
    out = tmp_path / "out"
    report.write({"name": "niid", "config": None, "runs": [result], "baselines": {},
                  "experiment": {"dataset": exp.dataset, "partition": exp.partition, "test_fraction": 0.2,
                                 "task": {}, "seconds": 600, "versions": 10**9, "target_accuracy": 0.881,
                                 "missing": [], "test_set": "official", "reference": exp.reference}}, out)
    text = (out / "report.md").read_text()
    assert "official test set" in text and "| NIID-Bench (paper): FedAvg, 50 rounds |" in text and "88.1%" in text


@pytest.mark.parametrize("text, message", [
    ('[data]\ntest_set = "mine"', "test_set must be"),
    ("[reference]\nsource = 'x'", "reference needs"),
    ('[[runs]]\nname = "a"\nbudget = { versions = "many" }', "bad budget"),
])
def test_bad_study_and_benchmark_options_are_refused(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError, match=message):
        load(path)


def test_a_run_counts_the_bytes_its_task_encoding_sends(tmp_path):
    """A run's own task settings override the experiment's; MB sent follows the encoding."""
    from experiments.config import load as load_config

    exp = load_config(Path(__file__).resolve().parent.parent / "experiments" / "configs" / "compression_flower.toml")
    raw, q8 = exp.runs
    assert raw.task == {} and q8.task == {"update_encoding": "q8-delta"}
    metrics = _metrics(1000.0, [0.1, 0.5, 0.9])
    n = 56714
    sent = {r.name: summarise(exp, r, metrics, {"num_parameters": n}, 1000.0, None)["final"]["bytes_sent"]
            for r in exp.runs}
    assert sent["fedasync-f32"] == 2 * 4 * n                      # two updates as float32
    assert sent["fedasync-q8-delta"] == 2 * (n + 4 * 222)         # two updates in 8 bits + 222 block scales
