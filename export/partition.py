"""Splitting a labelled dataset among simulated clients (IID and the usual non-IID schemes).

Each function returns one index array per client; together they never overlap.

- :func:`iid`: shuffled, equal parts;
- :func:`dirichlet`: per class, shares drawn from Dirichlet(alpha) (Hsu, Qi, Brown 2019,
  https://arxiv.org/abs/1909.06335); small alpha = very uneven label mixes;
- :func:`lacking`: equal parts, then client i drops the classes in ``missing[i]`` (the
  Flower article's "each client lacks three digits");
- :func:`shards`: sort by label, cut into ``clients * per_client`` shards, deal them out
  (McMahan et al. 2017's pathological non-IID split).
"""
from __future__ import annotations

import numpy as np


def iid(labels: np.ndarray, clients: int, seed: int = 0) -> list[np.ndarray]:
    order = np.random.default_rng(seed).permutation(len(labels))
    return [np.sort(part) for part in np.array_split(order, clients)]


def dirichlet(labels: np.ndarray, clients: int, alpha: float, seed: int = 0) -> list[np.ndarray]:
    if alpha <= 0:
        raise ValueError("alpha must be positive")
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[] for _ in range(clients)]
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        shares = rng.dirichlet([alpha] * clients)
        cuts = (np.cumsum(shares)[:-1] * len(idx)).astype(int)
        for part, chunk in zip(parts, np.split(idx, cuts)):
            part.extend(chunk.tolist())
    return [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]


def lacking(labels: np.ndarray, missing: list[list[int]], seed: int = 0) -> list[np.ndarray]:
    parts = iid(labels, len(missing), seed)
    return [p[~np.isin(labels[p], m)] for p, m in zip(parts, missing)]


def shards(labels: np.ndarray, clients: int, per_client: int = 2, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    order = np.argsort(labels, kind="stable")
    pieces = np.array_split(order, clients * per_client)
    deal = rng.permutation(len(pieces))
    return [np.sort(np.concatenate([pieces[j] for j in deal[i::clients]])) for i in range(clients)]


def lacking_groups(spec: str) -> list[list[str]] | None:
    """The class names each client lacks, from ``lacks:1,3,7/2,5,8/...`` (None for other kinds).
    The one parser of that syntax: partitions and experiment reports both use it."""
    kind, _, arg = spec.partition(":")
    if kind != "lacks":
        return None
    return [[c.strip() for c in g.split(",") if c.strip()] for g in arg.split("/")]


def parse(spec: str, labels: np.ndarray, clients: int, seed: int = 0) -> list[np.ndarray]:
    """``iid``, ``dirichlet:0.5``, ``shards:2`` or ``lacks:1,3,7/2,5,8/4,6,9`` (one group per client)."""
    kind, _, arg = spec.partition(":")
    if kind == "iid":
        return iid(labels, clients, seed)
    if kind == "dirichlet":
        return dirichlet(labels, clients, float(arg or 0.5), seed)
    if kind == "shards":
        return shards(labels, clients, int(arg or 2), seed)
    if kind == "lacks":
        groups = [[int(c) for c in g] for g in lacking_groups(spec)]
        if len(groups) != clients:
            raise ValueError(f"lacks: names {len(groups)} groups for {clients} clients")
        return lacking(labels, groups, seed)
    raise ValueError(f"unknown partition {spec!r}: use iid, dirichlet:ALPHA, shards:K or lacks:a,b/c,d/...")
