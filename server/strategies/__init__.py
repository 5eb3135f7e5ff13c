"""Aggregation strategies by name. Each module implements one paper; all are pure numpy."""
from __future__ import annotations

from .base import Aggregate, ClientUpdate, Strategy
from .fedasync import FedAsync
from .fedavg import FedAvg
from .fedbuff import FedBuff

STRATEGIES: dict[str, type[Strategy]] = {cls.name: cls for cls in (FedAsync, FedBuff, FedAvg)}


def make_strategy(config: dict) -> Strategy:
    """Build a strategy from a task's ``aggregator`` config: ``{"name": ..., **params}``.

    Raises ``ValueError`` with a readable message for unknown names or bad parameters.
    """
    params = dict(config)
    name = params.pop("name", "fedasync")
    if name not in STRATEGIES:
        raise ValueError(f"unknown aggregator {name!r}; choose one of {', '.join(STRATEGIES)}")
    try:
        return STRATEGIES[name](**params)
    except TypeError as exc:
        raise ValueError(f"bad parameters for {name}: {exc}") from None


def describe_all() -> list[dict]:
    """What the admin's task form shows for each strategy."""
    return [{"name": cls.name, "paper": cls.paper, "summary": cls.summary, "params": list(cls.form)}
            for cls in STRATEGIES.values()]


__all__ = ["describe_all", "Aggregate", "ClientUpdate", "FedAsync", "FedAvg", "FedBuff", "STRATEGIES", "Strategy", "make_strategy"]
