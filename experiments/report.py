"""results.json, results.csv, report.md and matplotlib plots for an experiment."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def write(results: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    _csv(results, out / "results.csv")
    plots = _plots(results, out)
    (out / "report.md").write_text(_markdown(results, plots))


def _csv(results: dict, path: Path) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run", "time_s", "version", "accuracy", "loss", "staleness", "bytes_sent", "per_class", "missing"])
        for run in results["runs"]:
            for p in run["series"]:
                w.writerow([run["name"], p["time"], p["version"], p["accuracy"], p["loss"], p["staleness"],
                            p["bytes_sent"], json.dumps(p["per_class"]), json.dumps(p.get("missing"))])


def _plots(results: dict, out: Path) -> list[str]:
    names = [_small_multiples(results, out)]
    runs = results["runs"]
    fig, ax = plt.subplots(figsize=(7, 4))
    for run in runs:
        ax.plot([p["version"] for p in run["series"]], [p["accuracy"] for p in run["series"]], marker=".",
                label=run["name"])
    ax.set_xlabel("global version")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1)
    ax.grid(alpha=.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "accuracy_vs_versions.png", dpi=110)
    plt.close(fig)
    names.append("accuracy_vs_versions.png")
    # final per-class accuracy: runs and baselines side by side
    rows = [(r["name"], r["series"][-1]["per_class"]) for r in runs if r["series"]]
    base = results["baselines"]
    if base.get("centralised"):
        rows.append(("centralised", base["centralised"]["per_class"]))
    for iso in base.get("isolated", []):
        rows.append((f"isolated {iso['client']}", iso["per_class"]))
    if rows:
        k = len(rows[0][1])
        fig, ax = plt.subplots(figsize=(max(7, k * 0.8), 4))
        width = 0.8 / len(rows)
        for i, (name, pc) in enumerate(rows):
            ax.bar(np.arange(k) + i * width, [v or 0 for v in pc], width, label=name)
        ax.set_xticks(np.arange(k) + 0.4 - width / 2)
        ax.set_xticklabels(results["runs"][0].get("classes") or [str(i) for i in range(k)])
        ax.set_ylim(0, 1)
        ax.set_ylabel("accuracy")
        ax.set_title("Per-class accuracy at the end")
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        fig.savefig(out / "per_class.png", dpi=110)
        plt.close(fig)
        names.append("per_class.png")
    from . import interactions

    if interactions.plot(runs, out / "interactions.png"):
        names.append("interactions.png")
    for run in runs:
        conf = run["final"].get("confusion")
        if not conf:
            continue
        fig, ax = plt.subplots(figsize=(5, 4.5))
        m = np.array(conf)
        ax.imshow(m, cmap="Blues")
        for (i, j), v in np.ndenumerate(m):
            if v:
                ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                        color="white" if v > m.max() / 2 else "black")
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"Confusion matrix: {run['name']}")
        fig.tight_layout()
        fname = f"confusion_{run['name']}.png"
        fig.savefig(out / fname, dpi=110)
        plt.close(fig)
        names.append(fname)
    return names


def _small_multiples(results: dict, out: Path) -> str:
    """One panel per run (accuracy over time, the settled window shaded), and under each its
    updates: which participant, when, how stale, so a dip can be traced to the updates
    that caused it."""
    runs = results["runs"]
    e = results["experiment"]
    cols = min(3, len(runs)) or 1
    rows = (len(runs) + cols - 1) // cols
    fig = plt.figure(figsize=(4.6 * cols, 4.6 * rows))
    # panel, its timeline, and a gap so a row's axis label never runs into the next row's title
    grid = fig.add_gridspec(rows * 3, cols, height_ratios=[3, 1, 0.55] * rows, hspace=0.3, wspace=0.45)
    cen = results["baselines"].get("centralised")
    xmax = max([p["time"] for r in runs for p in r["series"]] + [e.get("seconds") or 1])
    for i, run in enumerate(runs):
        r, c = divmod(i, cols)
        ax = fig.add_subplot(grid[3 * r, c])
        t = [p["time"] for p in run["series"]]
        ax.plot(t, [p["accuracy"] for p in run["series"]], marker=".", linewidth=1)
        last5 = run["final"].get("last5")
        if last5 and len(t) >= 2:
            ax.axvspan(t[-min(len(t), last5["count"])], t[-1], color="tab:green", alpha=0.12)
            ax.axhline(last5["mean"], color="tab:green", linewidth=1,
                       label=f"last {last5['count']}: {100 * last5['mean']:.1f}% ± {100 * last5['std']:.1f}")
        if e.get("target_accuracy"):
            ax.axhline(e["target_accuracy"], color="grey", linestyle="--", linewidth=1,
                       label=f"target {e['target_accuracy']:.0%}")
        if cen:
            ax.axhline(cen["accuracy"], color="black", linestyle=":", linewidth=1, label="centralised")
        lows = [p["accuracy"] for p in run["series"][1:]]
        ax.set_ylim(max(0.0, min(lows, default=0.0) - 0.05) if lows else 0, 1)
        ax.set_xlim(0, xmax)
        ax.set_title(run["name"], fontsize=10)
        ax.set_ylabel("test accuracy")
        ax.grid(alpha=.3)
        ax.legend(fontsize=7, loc="lower right")
        ax.tick_params(labelbottom=False)
        tl = fig.add_subplot(grid[3 * r + 1, c], sharex=ax)
        timeline = run.get("timeline") or []
        who = sorted({u["client"] for u in timeline})
        colours = plt.get_cmap("viridis", 6)
        for level in range(6):  # staleness 0..4 and 5 or more, one colour each
            mine = [u for u in timeline if min(u["staleness"] or 0, 5) == level]
            if mine:
                tl.scatter([u["time"] for u in mine], [who.index(u["client"]) for u in mine], s=10,
                           color=colours(level), label=f"staleness {level}{'+' if level == 5 else ''}")
        if timeline:
            tl.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        tl.set_yticks(range(len(who)))
        tl.set_yticklabels(who, fontsize=6)
        tl.set_xlabel("seconds since the participants started")
    fig.savefig(out / "accuracy_vs_time.png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return "accuracy_vs_time.png"


def _mb(n: float | None) -> str:
    return "–" if n is None else f"{n / 1e6:.1f}"


def _spread(s: dict | None) -> str:
    return "–" if s is None else f"{100 * s['mean']:.1f}% ± {100 * s['std']:.1f}"


def _markdown(results: dict, plots: list[str]) -> str:
    e = results["experiment"]
    lines = [f"# Experiment: {results['name']}", "",
             f"Dataset `{e['dataset']}`, partition `{e['partition']}`, "
             + ("evaluated on the dataset's official test set" if e.get("test_set") == "official"
                else f"{e['test_fraction']:.0%} held out for evaluation")
             + f"; task {json.dumps(e['task'])}; budget {e['seconds']:.0f} s"
             + (f" / {e['versions']} versions" if e["versions"] < 10**9 else "")
             + (f", target accuracy {e['target_accuracy']:.0%}" if e["target_accuracy"] else "") + ".", ""]
    missing = e.get("missing") or []
    settled = e.get("settled_versions", 5)
    head = (f"| run | clients | versions | updates | final accuracy | last {settled} (mean ± sd) | best "
            f"| time to target | MB sent | MB to target |")
    sep = "|---|---|---|---|---|---|---|---|---|---|"
    if missing:
        head += "".join(f" lacks {','.join(m)} (last {settled}) |" for m in missing)
        sep += "---|" * len(missing)
    lines += [head, sep]
    for r in results["runs"]:
        f = r["final"]
        c = r["clients"]
        ttt = "–" if f["time_to_target"] is None else f"{f['time_to_target']:.0f} s"
        row = (f"| {r['name']} | {c['browser']} browser + {c['cpython']} cpython | {f['version']} | {f['updates']} | "
               f"{_pct(f['accuracy'])} | {_spread(f.get('last5'))} | {_pct(f['best_accuracy'])} | {ttt} "
               f"| {f['bytes_sent'] / 1e6:.1f} | {_mb(f.get('bytes_to_target'))} |")
        row += "".join(f" {_spread(v)} |" for v in (f.get("missing_last5") or []))
        lines.append(row)
    ref = e.get("reference")
    if ref:
        lines.append(f"| {ref.get('source', 'published')}: {ref.get('setting', '')} | – | – | – "
                     f"| {_pct(ref['accuracy'])} | – | – | – | – | – |" + " |" * len(missing))
    base = results["baselines"]
    if base.get("centralised"):
        c = base["centralised"]
        row = f"| centralised ({base['epochs']} epochs) | – | – | – | {_pct(c['accuracy'])} | – | – | – | – | – |"
        row += "".join(f" {_pct(v)} |" for v in (c.get("missing") or []))
        lines.append(row)
    for iso in base.get("isolated", []):
        row = (f"| isolated client {iso['client']} ({base['epochs']} epochs) | – | – | – | {_pct(iso['accuracy'])} "
               f"| – | – | – | – | – |")
        if missing:
            row += "".join(f" {_pct(iso['missing'])} |" if i == iso["client"] else " |" for i in range(len(missing)))
        lines.append(row)
    stop = ("a run stops at its budget or as soon as a version reaches the target" if e.get("stop_at_target")
            else "every run uses its whole budget (no early stop)")
    where = "the dataset's official test set" if e.get("test_set") == "official" else "the held-out split"
    lines += ["", f"Accuracy is on {where}, measured by the server for each global version it evaluated; "
              f"{stop}. 'Final' is the last evaluated version, 'last {settled}' the mean and spread of the last "
              f"{settled} evaluated versions (where learning settled), 'best' the single best version. Time zero "
              "is when the run's participants started.", ""]
    for r in results["runs"]:
        s = r.get("interactions")
        if s and s["events"]:
            acts = ", ".join(f"{k} {v}" for k, v in sorted(s["actions"].items()))
            firsts = sorted(s["time_to_first_round"].values())
            lines += [f"User study, run {r['name']}: {s['events']} recorded actions from {s['participants']} "
                      f"participants ({acts}); median time to the first round "
                      + (f"{firsts[len(firsts) // 2]:.0f} s" if firsts else "–")
                      + f"; the log is `interactions-{r['name']}.jsonl`.", ""]
    lines += [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"
