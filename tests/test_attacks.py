"""The attack matrix's small version: one attacker among five participants, every attack
against one aggregator of each family, through the real server and the client's training
code. Each cell must hold (within the tolerance of the clean run) or be refused at the door."""
from __future__ import annotations

import pytest

from experiments.attacks import ATTACKS, MatrixConfig, run_matrix, table, verdicts
from experiments.server import ROOT


@pytest.mark.slow
def test_attack_matrix_small(capsys):
    cfg = MatrixConfig.from_toml(ROOT / "experiments/configs/attacks_smoke.toml")
    assert set(cfg.attacks) == set(ATTACKS)
    cells = run_matrix(cfg, log=lambda line: None)
    with capsys.disabled():
        print("\n" + table(cells, cfg.tolerance))
    v = verdicts(cells, cfg.tolerance)
    failed = {k: next(c.accuracy for c in cells if (c.aggregator, c.attack) == k) for k, x in v.items()
              if x == "FAILED"}
    assert not failed, failed
    clean = {c.aggregator: c.accuracy for c in cells if c.attack == "clean"}
    assert min(clean.values()) > 0.6, clean  # the runs learn at all, so "held" means something
    for c in cells:
        if c.attack in ("float32-max", "scale-20", "noise"):
            assert v[(c.aggregator, c.attack)] == "refused", (c.aggregator, c.attack, c.attacker)
        if c.attack == "several-per-round":
            assert c.attacker.get("applied", 0) + c.attacker.get("buffered", 0) <= cfg.rounds, c.attacker
