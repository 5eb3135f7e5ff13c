"""Staleness functions s(t - tau) from FedAsync (Xie, Koyejo, Gupta 2019, Sec. 5.2).

Each maps the staleness t - tau >= 0 to a factor in (0, 1] that is 1 for a fresh update
and does not increase with staleness.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

StalenessName = Literal["constant", "polynomial", "hinge"]


class StalenessParams(BaseModel):
    """Optional shape parameters: ``a`` (polynomial, hinge) and ``b`` (hinge)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    a: float | None = Field(None, ge=0, le=1000, description="polynomial exponent, or hinge slope")
    b: float | None = Field(None, ge=0, le=1e6, description="hinge: versions of full weight")


@dataclass(frozen=True)
class Constant:
    """s = 1."""

    name = "constant"

    def __call__(self, staleness: int) -> float:
        return 1.0


@dataclass(frozen=True)
class Polynomial:
    """s = (t - tau + 1) ** -a (default a = 0.5, as in the paper's experiments)."""

    a: float = 0.5
    name = "polynomial"

    def __post_init__(self) -> None:
        if not self.a >= 0:
            raise ValueError(f"polynomial staleness needs a >= 0, got {self.a}")

    def __call__(self, staleness: int) -> float:
        return float((staleness + 1) ** -self.a)


@dataclass(frozen=True)
class Hinge:
    """s = 1 if t - tau <= b, else 1 / (a (t - tau - b) + 1) (paper defaults a = 10, b = 4)."""

    a: float = 10.0
    b: float = 4.0
    name = "hinge"

    def __post_init__(self) -> None:
        if not (self.a > 0 and self.b >= 0):
            raise ValueError(f"hinge staleness needs a > 0 and b >= 0, got a={self.a}, b={self.b}")

    def __call__(self, staleness: int) -> float:
        return 1.0 if staleness <= self.b else float(1.0 / (self.a * (staleness - self.b) + 1.0))


def make_staleness(name: str = "polynomial", params: StalenessParams | dict | None = None, **kwargs: float):
    kinds = {"constant": Constant, "polynomial": Polynomial, "hinge": Hinge}
    if name not in kinds:
        raise ValueError(f"unknown staleness function {name!r}; choose one of {', '.join(kinds)}")
    if isinstance(params, StalenessParams):
        params = params.model_dump(exclude_none=True)
    given = {**(params or {}), **kwargs}
    if name == "constant":
        given = {}
    elif name == "polynomial":
        given.pop("b", None)
    return kinds[name](**given)
