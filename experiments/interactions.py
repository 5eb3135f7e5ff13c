"""What a user study's action log says (the export of :mod:`server.study`), for reports.

- labels per minute: accepted and hand-chosen labels, per participant and minute;
- suggestion acceptance vs confidence: of the suggestions a participant answered, the share
  accepted, by the model's confidence;
- time to first round: from a participant's first action to its first sent update.
"""
from __future__ import annotations

CONFIDENCE_BINS = [0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 1.0]
LABELLING = ("accept", "correct")


def summarise(events: list[dict]) -> dict:
    """Events as exported (``participant``, ``at``, ``action``, ``detail``) -> the figures."""
    if not events:
        return {"events": 0, "participants": 0, "actions": {}, "labels_per_minute": [], "acceptance": [],
                "time_to_first_round": {}}
    t0 = min(e["at"] for e in events)
    actions: dict[str, int] = {}
    for e in events:
        actions[e["action"]] = actions.get(e["action"], 0) + 1
    span = max(e["at"] for e in events) - t0
    step = 60 if span >= 300 else 10  # short runs: a rate per minute from 10 s bins
    counts = [0] * (int(span // step) + 1)
    for e in events:
        if e["action"] in LABELLING:
            counts[int((e["at"] - t0) // step)] += 1
    per_minute = [{"start": i * step, "seconds": step, "rate": n * 60 / step} for i, n in enumerate(counts)]
    acceptance = []
    answered = [e for e in events if e["action"] in LABELLING and e["detail"].get("confidence") is not None]
    for lo, hi in zip(CONFIDENCE_BINS, CONFIDENCE_BINS[1:]):
        inside = [e for e in answered if lo <= e["detail"]["confidence"] < hi or (hi == 1.0 and e["detail"]["confidence"] == 1.0)]
        accepted = sum(1 for e in inside if e["action"] == "accept")
        acceptance.append({"low": lo, "high": hi, "answered": len(inside),
                           "accepted": accepted, "rate": accepted / len(inside) if inside else None})
    first_round: dict[str, float] = {}
    for who in sorted({e["participant"] for e in events}):
        mine = [e for e in events if e["participant"] == who]
        start = min(e["at"] for e in mine)
        rounds = [e["at"] for e in mine if e["action"] == "round"]
        if rounds:
            first_round[who] = round(min(rounds) - start, 2)
    return {"events": len(events), "participants": len({e["participant"] for e in events}), "actions": actions,
            "labels_per_minute": per_minute, "acceptance": acceptance, "time_to_first_round": first_round}


def plot(runs: list[dict], path) -> bool:
    """One row per run that has a study log: labels per minute, acceptance vs confidence,
    time to first round. Returns False (nothing drawn) when no run has one."""
    studied = [r for r in runs if r.get("interactions", {}).get("events")]
    if not studied:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(studied), 3, figsize=(13, 3.4 * len(studied)), squeeze=False)
    for row, run in zip(axes, studied):
        s = run["interactions"]
        bins = s["labels_per_minute"]
        row[0].bar([b["start"] for b in bins], [b["rate"] for b in bins], width=[b["seconds"] * 0.9 for b in bins],
                   align="edge", color="#2364d2")
        row[0].set_title(f"{run['name']}: labelling pace (all participants)")
        row[0].set_xlabel("seconds since the first action")
        row[0].set_ylabel("labels per minute")
        bins = [b for b in s["acceptance"] if b["answered"]]
        row[1].bar([f"{b['low']:.1f}-{b['high']:.1f}" for b in bins], [100 * b["rate"] for b in bins],
                   color="#3a9d5d")
        for i, b in enumerate(bins):
            row[1].annotate(f"n={b['answered']}", (i, 100 * b["rate"]), ha="center", va="bottom", fontsize=8)
        row[1].set_ylim(0, 110)
        row[1].set_title("suggestions accepted, by the model's confidence")
        row[1].set_xlabel("confidence")
        row[1].set_ylabel("% accepted")
        who = sorted(s["time_to_first_round"])
        row[2].barh([w[:8] for w in who], [s["time_to_first_round"][w] for w in who], color="#c77c2e")
        row[2].set_title("time to the first round sent")
        row[2].set_xlabel("seconds since the participant's first action")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
