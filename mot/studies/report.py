"""The benchmark report: Markdown tables, PNG plots (matplotlib, optional) and the JSON they come from.

Input is the dict :func:`mot.studies.benchmark.benchmark` returns. Every file is written atomically.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import tempfile
from pathlib import Path

from mot.io import atomic_write_text

ACCURACY = ("HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW", "FP", "FN")
#: Report columns: label -> the StageTimer stages summed into it.
STAGE_COLUMNS = {
    "image read": ("read",), "detector": ("detector",), "camera motion": ("camera",), "flow": ("flow",),
    "patches + CNN": ("patches", "network"),
    "refiner": ("refiner",), "features + XGBoost (IoU)": ("association",), "linking": ("linking",),
    "track life cycle": ("tracker",), "other prep": ("prepare",),
}
PEER_NOTE = ("Peers use their packages' default parameters on our detections; their scores are mapped to "
             "[0, 1] with each scaling of the sweep and each peer is shown at the scaling with the best "
             "combined HOTA **on these same sequences** (tuned on the test data: the strongest fair anchor, "
             "not a held-out result).")


def _cell(v, digits: int = 1) -> str:
    if v is None:
        return "-"
    return f"{v:d}" if isinstance(v, int) else f"{v:.{digits}f}"


def _ms(v) -> str:
    """Milliseconds: two decimals below 10 ms, one above."""
    return "-" if v is None else f"{v:.2f}" if v < 10 else f"{v:.1f}"


def _short(status: str) -> str:
    """A table cell for a peer that did not run: the reason's first words (the full text is listed below)."""
    return status.split(":")[0].split(" in ")[0]


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c if isinstance(c, str) else _cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def trackers(result: dict) -> list[dict]:
    """One entry per tracker: ``{"name", "kind", "combined", "sequences", "fps", "status"}``; peers at
    their best scaling."""
    out = []
    for name, r in result["ours"].items():
        out.append({"name": name, "kind": "ours", "combined": r["combined"], "sequences": r["sequences"],
                    "fps": r["speed"]["fps"], "status": "ok" if r["combined"] else "no scored sequence"})
    from mot.studies.peers import PEER_LABELS
    for name, r in ((result.get("peers") or {}).get("peers") or {}).items():
        label = PEER_LABELS.get(name, name)
        best = r["best_scaling"]
        if r["status"] != "ok" or best is None:
            out.append({"name": label, "kind": "peer", "combined": None, "sequences": {}, "fps": None,
                        "status": _short(r["status"]) if r["status"] != "ok" else "no sequence ran",
                        "reason": r["status"]})
            continue
        run = r["sweep"][best]
        seqs = run["sequences"]
        frames, secs = sum(s["frames"] for s in seqs.values()), sum(s["seconds"] for s in seqs.values())
        out.append({"name": f"{label} ({best})", "kind": "peer", "combined": run["combined"], "sequences": seqs,
                    "fps": round(frames / secs, 1) if secs else None, "status": "ok"})
    return out


def stage_ms(ms_per_frame: dict) -> dict[str, float | None]:
    """Report column -> ms per frame (None for a stage the run does not have)."""
    out = {}
    for label, keys in STAGE_COLUMNS.items():
        present = [ms_per_frame[k] for k in keys if k in ms_per_frame]
        out[label] = max(sum(present), 0.0) if present else None
    return out


def markdown(result: dict, plots: dict[str, str | None]) -> str:
    """The report text; ``plots`` maps plot name -> PNG file name, or None with the reason in ``plots['why']``."""
    m = result["machine"]
    parts = ["# Benchmark: ours vs peer trackers\n",
             f"Data `{result['data']}`, detections `{result['det_file']}` for every tracker (our configs that read "
             f"public detections are switched to the same file). Started {result['started']}, took "
             f"{result['seconds']:.0f} s.\n",
             f"Command: `{result['command']}`\n",
             f"Machine: {m['cpu']}, {m['cores']} cores, load average (1/5/15 min) {m['load_average_1_5_15min']} at the "
             f"start and {m.get('load_average_at_end')} at the end (shared machine: speeds are indicative); Python "
             f"{m['python']}, torch {m['torch']}, numpy {m['numpy']}. Our pipeline on CPU with "
             f"{(result.get('density') or {}).get('threads', 1)} torch thread(s).\n"]
    rows = trackers(result)
    parts.append("## Accuracy (all sequences combined)\n")
    parts.append(PEER_NOTE + "\n")
    if (result.get("peers") or {}).get("reused_from"):
        parts.append(f"Peer results (accuracy and FPS) reused from {result['peers']['reused_from']} "
                     "with `--reuse-peers`: same data and detections, speed measured under that run's load.\n")
    parts.append(_table(["tracker"] + list(ACCURACY) + ["FPS"],
                        [[t["name"]] + ([t["combined"].get(k) for k in ACCURACY] + [t["fps"]] if t["combined"]
                                        else [t["status"]] + [""] * len(ACCURACY)) for t in rows]) + "\n")
    if plots.get("accuracy"):
        parts.append(f"![accuracy per tracker]({plots['accuracy']})\n")
    parts.append("## Accuracy per sequence\n")
    seq_rows = [[t["name"], seq] + [s.get(k) for k in ACCURACY] for t in rows for seq, s in t["sequences"].items()]
    parts.append(_table(["tracker", "sequence"] + list(ACCURACY), seq_rows) + "\n")
    peers = (result.get("peers") or {}).get("peers") or {}
    if peers:
        scal = result["peers"]["scalings"]
        parts.append("## Peer score-scaling sweep (combined HOTA / MOTA / IDF1)\n")
        parts.append("`clip`: scores clipped to [0, 1]; `minmax`: linear from the sequence's lowest to its highest "
                     "score; `rank`: fraction of the sequence's scores at or below; `sqrt_rank`: its square root.\n")
        body = []
        for name, r in peers.items():
            cells = []
            for s in scal:
                c = (r["sweep"].get(s) or {}).get("combined")
                txt = "-" if not c else f"{_cell(c['HOTA'])} / {_cell(c['MOTA'])} / {_cell(c['IDF1'])}"
                cells.append(f"**{txt}**" if s == r["best_scaling"] else txt)
            body.append([name] + (cells if r["status"] == "ok" else [_short(r["status"])] + [""] * (len(scal) - 1)))
        parts.append(_table(["peer"] + scal, body) + "\n")
        skipped = [f"- {n}: {r['status']}" for n, r in peers.items() if r["status"] != "ok"]
        if skipped:
            parts.append("Peers that did not run:\n\n" + "\n".join(skipped) + "\n")
    parts.append("## Speed on these sequences (CPU)\n")
    parts.append("Milliseconds per frame by stage (summed over the sequences, divided by their frames); FPS is end "
                 "to end (frames / wall seconds, including loading the models). `image read` is the time the "
                 "tracker waited for a frame (frames are read ahead in a thread). `-`: the stage does not run in "
                 "that config. Peers: FPS of the tracker alone on the same detections (BoT-SORT includes reading "
                 "images for its camera-motion compensation, DeepSORT reading images and its MobileNetV2 "
                 "embedder, whose embeddings are cached with the seconds they took, so a re-run reports the same "
                 "cost).\n")
    labels = list(STAGE_COLUMNS)
    srows = []
    for name, r in result["ours"].items():
        st = stage_ms(r["speed"]["ms_per_frame"])
        srows.append([name, r["speed"]["people_per_frame"], r["speed"]["fps"]] + [_ms(st[k]) for k in labels])
    for t in rows:
        if t["kind"] == "peer":
            srows.append([t["name"], "", t["fps"] if t["fps"] is not None else t["status"]] + [""] * len(labels))
    parts.append(_table(["tracker", "detections / frame", "FPS"] + labels, srows) + "\n")
    if plots.get("stages"):
        parts.append(f"![per-stage time]({plots['stages']})\n")
    d = result.get("density")
    parts.append("## Cost vs people per frame (generated 1920x1080 sequences)\n")
    if d and d.get("error"):
        parts.append(f"Config `{d['config']}` could not run: {d['error']}.\n")
    elif d:
        parts.append(f"Config `{d['config']}` on CPU ({d['threads']} torch thread), {d['frames']} frames per "
                     f"sequence, everyone in view in every frame; medians over {d['repeats']} runs. Detections per "
                     "frame are fewer than people where people hide each other.\n")
        drows = []
        for row in d["rows"]:
            st = stage_ms(row["ms_per_frame"])
            total = sum(v for v in st.values() if v is not None)
            drows.append([row["people"], row["detections_per_frame"], row["fps"], _ms(total)]
                         + [_ms(st[k]) for k in labels])
        parts.append(_table(["people / frame", "detections / frame", "FPS", "total ms / frame"] + labels, drows) + "\n")
        if plots.get("density"):
            parts.append(f"![cost vs people per frame]({plots['density']})\n")
    else:
        parts.append("Not run (`--density` with no values).\n")
    dc = result.get("detector_costs") or {}
    parts.append("## Detector cost\n")
    if dc.get("status") == "ok":
        keys = sorted(dict.fromkeys(k for r in dc["rows"] for k in r), key=lambda k: k == "error")
        parts.append("Milliseconds per `detect` call on a generated texture at each size (OpenCV's default "
                     "threads); the detector's cost does not depend on how many people are in view.\n")
        parts.append(_table(keys, [[r[k] if isinstance(r.get(k), (int, float)) else str(r.get(k, "")) for k in keys]
                                   for r in dc["rows"]]) + "\n")
    else:
        parts.append(f"{dc.get('status', 'not measured')}.\n")
    from mot.studies.benchmark import failures
    fails = failures(result)
    parts.append("## Failures\n")
    parts.append("\n".join(f"- {f}" for f in fails) + "\n" if fails else "None.\n")
    if plots.get("why"):
        parts.append(f"Plots: {plots['why']}.\n")
    return "\n".join(parts)


def _save(fig, path: Path) -> None:
    """Writes a figure as PNG atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "wb") as fh:
        fh.write(buf.getvalue())
    os.replace(tmp, path)


def plot_accuracy(rows: list[dict], path: Path) -> None:
    from matplotlib.figure import Figure
    rows = [t for t in rows if t["combined"]]
    metrics = ("HOTA", "IDF1", "MOTA")
    fig = Figure(figsize=(8, 0.55 * len(rows) * len(metrics) / 2 + 1.8))
    ax = fig.add_subplot()
    h = 0.8 / len(metrics)
    for i, k in enumerate(metrics):
        vals = [t["combined"][k] or 0.0 for t in rows]
        ys = [j + i * h for j in range(len(rows))]
        bars = ax.barh(ys, vals, height=h, label=k)
        ax.bar_label(bars, labels=[f"{v:.1f}" for v in vals], fontsize=7, padding=2)
    ax.set_yticks([j + h for j in range(len(rows))], [t["name"] for t in rows])
    ax.invert_yaxis()
    ax.set_xlabel("score (%), all sequences combined")
    ax.set_title("Accuracy per tracker (peers at their best score scaling)")
    low = min([0.0] + [t["combined"][k] or 0.0 for t in rows for k in metrics])
    ax.set_xlim(low * 1.1, 105)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, title="metric", title_fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    _save(fig, path)


def _stacked(ax, names: list[str], stage_rows: list[dict], horizontal: bool) -> None:
    labels = [k for k in STAGE_COLUMNS if any(r[k] for r in stage_rows)]
    base = [0.0] * len(names)
    pos = list(range(len(names)))
    for k in labels:
        vals = [r[k] or 0.0 for r in stage_rows]
        if horizontal:
            ax.barh(pos, vals, left=base, label=k)
        else:
            ax.bar(pos, vals, bottom=base, label=k)
        base = [b + v for b, v in zip(base, vals)]
    for p, total, r in zip(pos, base, stage_rows):
        if horizontal:
            ran = any(v is not None for v in r.values())
            ax.text(total, p, f" {_ms(total)} ms" if ran else " did not run", va="center", fontsize=8)
        else:
            ax.text(p, total, f"{_ms(total)} ms", ha="center", va="bottom", fontsize=8)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="stage", title_fontsize=8)


def plot_stages(result: dict, path: Path) -> None:
    from matplotlib.figure import Figure
    names = list(result["ours"])
    fig = Figure(figsize=(8, 1.0 + 0.6 * len(names)))
    ax = fig.add_subplot()
    _stacked(ax, names, [stage_ms(result["ours"][n]["speed"]["ms_per_frame"]) for n in names], horizontal=True)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlabel("ms per frame (CPU)")
    ax.set_title(f"Per-stage time on {Path(result['data']).name}")
    ax.set_xlim(right=ax.get_xlim()[1] * 1.15)
    _save(fig, path)


def plot_density(d: dict, path: Path) -> None:
    from matplotlib.figure import Figure
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    names = [str(r["people"]) for r in d["rows"]]
    _stacked(ax, names, [stage_ms(r["ms_per_frame"]) for r in d["rows"]], horizontal=False)
    ax.set_xticks(range(len(names)), [f"{r['people']}\n({r['fps']:.1f} FPS)" for r in d["rows"]])
    ax.set_xlabel("people per frame (1920x1080), end-to-end FPS in brackets")
    ax.set_ylabel("ms per frame (CPU)")
    ax.set_title(f"Cost vs people per frame ({Path(d['config']).stem}, median of {d['repeats']} runs)")
    ax.set_ylim(top=ax.get_ylim()[1] * 1.1)
    ax.grid(axis="y", alpha=0.3)
    _save(fig, path)


def write_report(result: dict, out_dir) -> Path:
    """Writes ``report.md``, ``report.json`` and the PNGs into ``out_dir``; returns the Markdown path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plots: dict[str, str | None] = {}
    if importlib.util.find_spec("matplotlib") is None:
        plots["why"] = "not drawn, matplotlib not installed (pip install -e '.[bench]')"
    else:
        if any(t["combined"] for t in trackers(result)):
            plot_accuracy(trackers(result), out / "accuracy.png")
            plots["accuracy"] = "accuracy.png"
        if result["ours"]:
            plot_stages(result, out / "stages.png")
            plots["stages"] = "stages.png"
        if (result.get("density") or {}).get("rows"):
            plot_density(result["density"], out / "density.png")
            plots["density"] = "density.png"
    atomic_write_text(out / "report.json", json.dumps(result, indent=1) + "\n")
    atomic_write_text(out / "report.md", markdown(result, plots))
    return out / "report.md"
