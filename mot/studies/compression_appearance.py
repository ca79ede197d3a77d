"""The appearance benchmark across compressed copies of one sequence (generations).

Each generation is the same sequence with the same ground truth, its frames from another encoding
(:mod:`mot.studies.compression` makes them). Every method embeds every considered ground-truth box
of every generation through its run-time path, and :func:`mot.studies.appearance.score` gives pair
verification AUC (random and hard negatives) and rank-1 at each gap, per generation. Two things
are read from it:

- the drop: each score on a generation minus the same score on the reference (the first
  generation); a method robust to compression keeps its scores flat;
- the drift: how far compression moves one box's embedding, the distance between its embedding on
  a generation and on the reference, in units of the median distance between the same person one
  frame apart on the reference (so 1.0 means compression moves a box as far as a frame of motion
  does; methods with different distance scales become comparable).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from association.siamese import AppearanceModel, AppearanceParams
from mot.errors import UserError
from mot.sequence import open_folder
from mot.studies.appearance import (
    Embedder,
    embed_sequence,
    gap_pairs,
    gap_views,
    luv_histograms,
    score,
)

#: The shipped Siamese model's label; ``--model shipped`` (or ``shipped=``) selects it.
SHIPPED = "shipped siamese.pt"
#: The colour-histogram baseline's label.
HISTOGRAM = "LUV colour histogram"


def siamese_models(items, option: str = "--model") -> dict[str, str | None]:
    """``LABEL=WEIGHTS`` command-line items as ``{label: weights path}`` for :func:`embedders`; the
    word ``shipped`` (or ``shipped=``) is ``mot/weights/siamese.pt``, labelled :data:`SHIPPED`.

    Raises:
        UserError: an item that is neither ``shipped`` nor ``LABEL=WEIGHTS``, or a label given twice.
    """
    from mot.cli import labelled_items

    items = ["shipped" if item == "shipped=" else item for item in items]
    parsed = labelled_items(items, option, bare=lambda item: SHIPPED if item == "shipped" else "")
    return {label: (None if label == SHIPPED and value == "shipped" else value) for label, value in parsed.items()}


def embedders(models: dict[str, str | None], histogram: bool = True, device: str = "cpu") -> dict[str, Embedder]:
    """Siamese models by label (weights path, or None for the shipped file), as the tracker runs them
    (``AppearanceParams`` defaults: flow channels zeroed), plus the LUV colour histogram."""
    out: dict[str, Embedder] = {}
    for label, weights in models.items():
        out[label] = AppearanceModel(AppearanceParams(weights=weights or None), device=device).embed
    if histogram:
        out[HISTOGRAM] = luv_histograms
    return out


def drift(reference: np.ndarray, other: np.ndarray, boxes: dict) -> float:
    """Median distance between a box's embedding on two generations, over the median distance
    between the same person one frame apart on the reference.

    Args:
        reference, other: (M, E) float32 embeddings of the same M boxes (rows in the same order).
        boxes: ``frames (M,)``, ``ids (M,)`` of those boxes.
    """
    moved = np.sqrt(((reference - other) ** 2).sum(1))
    a, b, same = gap_pairs(boxes["frames"], boxes["ids"], 1)
    step = np.sqrt(((reference[a[same]] - reference[b[same]]) ** 2).sum(1))
    scale = float(np.median(step)) if len(step) else float("nan")
    return float(np.median(moved)) / scale if scale > 0 else float("nan")


def score_generations(generations: dict[str, str | Path], methods: dict[str, Embedder],
                      gaps=(1, 10, 30)) -> dict:
    """Scores every method on every generation of one sequence.

    Args:
        generations: label -> sequence folder; the first is the reference. All must hold the same
            ground truth (the same boxes, in the same order).
        methods: label -> embedder.

    Returns:
        JSON-ready: ``scores[generation][method][gap]`` (as :func:`score`), ``drift[generation][method]``
        against the reference, and ``boxes`` (the number of boxes embedded).

    Raises:
        UserError: fewer than one generation, or generations whose ground truth differs.
    """
    if not generations:
        raise UserError("no generations to score")
    scores, drifts, ref_boxes, ref_emb = {}, {}, None, None
    for label, path in generations.items():
        seq = open_folder(Path(path))
        if seq.gt_path is None:
            raise UserError(f"{path}: no gt/gt.txt to score against")
        boxes, emb = embed_sequence(seq, methods)
        if ref_boxes is None:
            ref_boxes, ref_emb = boxes, emb
        elif not all(np.array_equal(boxes[k], ref_boxes[k]) for k in ("frames", "ids", "tlwh")):
            raise UserError(f"{path}: its ground truth differs from {next(iter(generations.values()))}'s; "
                            "generations must be copies of one sequence")
        scores[label] = score(boxes, emb, gaps, gap_views(methods))
        drifts[label] = {m: drift(ref_emb[m], emb[m], boxes) for m in methods}
    return {"generations": {k: str(v) for k, v in generations.items()}, "boxes": len(ref_boxes["ids"]),
            "scores": scores, "drift": drifts}


_METRICS = (("auc", "AUC"), ("auc_hard", "hard AUC"), ("rank1", "R1"))


def format_generations(result: dict, gaps=(1, 10, 30)) -> str:
    """Markdown: one table per method, a row per generation (percent), then each generation's
    change from the reference, and the drift."""
    gens = list(result["scores"])
    methods = list(result["scores"][gens[0]])
    head = ("| generation | " + " | ".join(f"{name}@{g}" for _, name in _METRICS for g in gaps)
            + " | drift |")
    rule = "|---" * (2 + len(_METRICS) * len(gaps)) + "|"
    blocks = []
    for m in methods:
        lines = [f"{m}:", "", head, rule]
        ref = result["scores"][gens[0]][m]
        for gen in gens:
            row = result["scores"][gen][m]
            cells = [f"{100 * row[g][key]:.2f}" for key, _ in _METRICS for g in gaps]
            lines.append(f"| {gen} | " + " | ".join(cells) + f" | {result['drift'][gen][m]:.3f} |")
        for gen in gens[1:]:
            row = result["scores"][gen][m]
            cells = [f"{100 * (row[g][key] - ref[g][key]):+.2f}" for key, _ in _METRICS for g in gaps]
            lines.append(f"| {gen} - {gens[0]} | " + " | ".join(cells) + " | |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
