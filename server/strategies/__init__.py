"""Aggregation strategies by name. Each module implements one paper; all are pure numpy."""
from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field, TypeAdapter, ValidationError

from .base import Aggregate, ClientUpdate, Strategy, StrategyParams
from .fedasync import FedAsync
from .fedavg import FedAvg
from .fedbuff import FedBuff

STRATEGIES: dict[str, type[Strategy]] = {cls.name: cls for cls in (FedAsync, FedBuff, FedAvg)}

# A task's ``aggregator`` config: one of the strategies' parameter models, chosen by name.
AggregatorConfig = Annotated[Union[tuple(cls.Params for cls in STRATEGIES.values())],
                             Field(discriminator="name")]
_AGGREGATOR = TypeAdapter(AggregatorConfig)


def make_strategy(config: dict | StrategyParams) -> Strategy:
    """Build a strategy from a task's ``aggregator`` config: ``{"name": ..., **params}``.

    Raises ``ValueError`` with a readable message for unknown names or bad parameters.
    """
    if isinstance(config, StrategyParams):
        params = config
    else:
        config = dict(config)
        config.setdefault("name", "fedasync")
        if config["name"] not in STRATEGIES:
            raise ValueError(f"unknown aggregator {config['name']!r}; choose one of {', '.join(STRATEGIES)}")
        try:
            params = _AGGREGATOR.validate_python(config)
        except ValidationError as exc:
            raise ValueError(f"bad parameters for {config['name']}: {exc}") from None
    return STRATEGIES[params.name](**params.model_dump(exclude={"name"}))


__all__ = ["AggregatorConfig", "Aggregate", "ClientUpdate", "FedAsync", "FedAvg", "FedBuff", "STRATEGIES",
           "Strategy", "StrategyParams", "make_strategy"]
