"""Leave-one-scene-out appearance benchmark, the topology comparison, and the raw ImageNet baseline.

Scenes, not sequences, are left out: ADL-Rundle-6 and MOT17-09 are one footage (one scene), and the
two PETS 2009 sequences are the same camera view (one scene). For each left-out scene a model is
trained with the recipe on every other scene (one other scene chooses the stopping point), then the
scene's first sequence is embedded through the run-time path and scored by
:func:`mot.studies.appearance.score` (AUC against random and hard negatives, rank-1, at each gap),
beside the LUV colour histogram, the raw ImageNet MobileNetV2 and the shipped model.

The topology comparison scores pairs with each topology's own output (distance, weighted-L1
sigmoid, or stacked-pair softmax) on held-out ground-truth boxes, and times each at 10 and 50
people per frame (a pairwise network costs one pass per track-detection pair).
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

from association.backbone import IMAGENET_MEAN, IMAGENET_STD, MobileNetV2Features, fuse_batch_norm, load_imagenet
from association.flow import FlowComputer, FlowParams, crop_flow
from association.patches import PAD_BGR, PatchParams, crop_patches, crop_resize
from association.siamese import AppearanceModel, AppearanceParams, load_weights
from association.topologies import InNetworkNet, JointNet
from mot.io import read_ground_truth
from mot.sequence import discover, open_sequence
from mot.studies.appearance import (Embedder, discordant, embed_sequence, hard_negatives, luv_histograms,
                                    mcnemar_p, pooled, rank1_hits, roc_auc, score)

#: Development scenes and their sequences (the first is the one scored when the scene is left out).
SCENES = {"MOT17-05": ["MOT17-05"], "KITTI-17": ["KITTI-17"], "TUD-Campus": ["TUD-Campus"],
          "PETS09": ["PETS09-S2L1", "PETS09-S3-MF1"], "ADL-Rundle-6": ["MOT17-09", "ADL-Rundle-6"]}
#: Always trained on (a few frames each; never scored).
EXTRA_TRAIN = ["MOT17-04*", "MOT17-10*", "MOT17-13*"]


#: The sequences scored for a scene (left out, or validating): both PETS 2009 views; of the
#: ADL-Rundle-6 footage only MOT17-09, its denser annotation (the same frames scored twice otherwise).
SCORED = {"MOT17-05": ["MOT17-05"], "KITTI-17": ["KITTI-17"], "TUD-Campus": ["TUD-Campus"],
          "PETS09": ["PETS09-S2L1", "PETS09-S3-MF1"], "ADL-Rundle-6": ["MOT17-09"]}
RECIPE = "recipe (scene left out)"
#: The baselines every study scores beside the recipe: saved embedding key -> row label.
BASELINES = {"hist": "LUV colour histogram", "imagenet": "ImageNet MobileNetV2 (raw)"}


def validation_scene(scene: str) -> str:
    """The scene that chooses the stopping point and the inference share when ``scene`` is left out."""
    return "TUD-Campus" if scene != "TUD-Campus" else "PETS09"


def split(scene: str) -> tuple[list[str], list[str], list[str]]:
    """(train, val, test) sequence names when ``scene`` is left out.

    The validation scene (stopping point) is TUD-Campus, or PETS09 when TUD-Campus is the one left out.
    """
    val_scene = validation_scene(scene)
    train = [s for name, seqs in SCENES.items() if name not in (scene, val_scene) for s in seqs]
    return train + EXTRA_TRAIN, list(SCENES[val_scene]), list(SCENES[scene])


def imagenet_mobilenet(path: str | Path, patch: PatchParams | None = None) -> Embedder:
    """The raw ImageNet MobileNetV2 (all 19 modules, RGB stem), globally pooled: (N, 1280), unit norm.

    Crops are resized to ``patch`` (default 128x64), as for the other methods.
    """
    patch = patch or PatchParams()
    net = MobileNetV2Features(3, 19)
    load_imagenet(net, path, rgb=True)
    net = fuse_batch_norm(net.eval())

    @torch.no_grad()
    def embed(image_bgr, tlwh, prev_image_bgr=None):
        crops = crop_resize(image_bgr, tlwh, patch.height, patch.width, pad_value=PAD_BGR)
        if not len(crops):
            return np.zeros((0, 1280), np.float32)
        rgb = (crops[..., ::-1].astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
        e = net(torch.from_numpy(np.ascontiguousarray(rgb.transpose(0, 3, 1, 2)))).mean((2, 3)).numpy()
        return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)

    return embed


def reweight(emb: np.ndarray, hist_dim: int, trained_share: float, share: float) -> np.ndarray:
    """Embeddings ``[sqrt(s0) h, sqrt(1 - s0) c]`` re-weighted to ``[sqrt(s) h, sqrt(1 - s) c]``.

    The same as embedding with ``AppearanceParams(hist_share=s)`` (the two parts are each of unit
    norm), without a second pass through the network.

    Args:
        emb: (M, hist_dim + E) float32 embeddings of a model with a colour layer, at share ``trained_share``.
        hist_dim: the colour layer's output size (the first columns).
        trained_share, share: s0 in (0, 1) and s in [0, 1].
    """
    out = np.array(emb, np.float32, copy=True)
    out[:, :hist_dim] *= np.sqrt(share / trained_share)
    out[:, hist_dim:] *= np.sqrt((1 - share) / (1 - trained_share))
    return out


def share_criterion(scores: dict, gaps=(1, 10, 30)) -> float:
    """Mean over the gaps of AUC plus rank-1 (one method's scores): what the inference share maximises.

    Gaps without pairs (NaN) are left out; -inf when no gap has any.
    """
    values = np.array([scores[g]["auc"] + scores[g]["rank1"] for g in gaps], float)
    return float(values[np.isfinite(values)].mean()) if np.isfinite(values).any() else -np.inf


def choose_share(by_share: dict[float, dict], gaps=(1, 10, 30)) -> float:
    """The share with the highest :func:`share_criterion` (ties, or no pairs at all: the first in the grid)."""
    best, best_value = next(iter(by_share)), -np.inf
    for share, scores in by_share.items():
        value = share_criterion(scores, gaps)
        if value > best_value + 1e-12:
            best, best_value = share, value
    return best


def _paths(roots: list[Path], names: list[str]) -> list[Path]:
    from mot.errors import UserError

    found = {p.name: p for root in roots if root.is_dir() for p in discover(root)}
    missing = [n for n in names if n not in found]
    if missing:
        raise UserError(f"sequence {missing[0]} not found under {', '.join(map(str, roots))}")
    return [found[n] for n in names]


def _embed_scene(roots: list[Path], names: list[str], embedders: dict[str, Embedder]) -> list[tuple[dict, dict]]:
    return [embed_sequence(open_sequence(p), embedders) for p in _paths(roots, names)]


def _scene_scores(embedded: list[tuple[dict, dict]], methods: dict, gaps, views: dict | None = None) -> dict:
    """Scores of a scene (its sequences pooled); ``methods``: label -> f(embeddings dict) -> (M, E);
    ``views`` as :func:`mot.studies.appearance.score`'s."""
    per_seq = [score(boxes, {label: f(emb) for label, f in methods.items()}, gaps, views) for boxes, emb in embedded]
    return per_seq[0] if len(per_seq) == 1 else pooled(per_seq)


def run_loso(data: list[str], scenes: list[str], out_dir: str | Path, pretrained: str, reid: list[str] | None,
             overrides: dict | None = None, cache: str | None = None, gaps=(1, 10, 30),
             shipped: bool = True, progress: bool = False, shares=None,
             keep: str | Path | None = None) -> dict:
    """Trains (or reuses) one model per left-out scene and benchmarks it on that scene.

    With ``shares`` (inference ``hist_share`` values; the model must have a colour layer), each fold
    model is first scored on its validation scene (:func:`validation_scene`, never the scene
    reported) at every share, the share with the best mean AUC plus rank-1 over the gaps is chosen,
    and the left-out scene is scored at that share, beside the model at its trained share.

    Args:
        data: folders of MOTChallenge-layout sequences with ground truth.
        scenes: names from :data:`SCENES` to leave out in turn.
        out_dir: where each scene's model ``loso_<scene>.pt`` is written (reused when present).
        pretrained: the ImageNet MobileNetV2 state dict (backbone start and raw baseline).
        reid: re-id crop folders for training.
        overrides: ``TrainParams`` fields for every model (the recipe).
        shipped: also score the shipped model.
        shares: inference shares to choose from on validation (None: the trained share only).
        keep: a folder to save each scored sequence's boxes and embeddings in (``<scene>_<seq>.npz``,
            float32), for later study without embedding again.

    Returns:
        JSON-ready: per scene the split, the training summary, the validation scores per share, the
        chosen share and the scores (:data:`SCORED` sequences, pooled); scores pooled over all scenes.
    """
    from mot.config import from_dict
    from mot.errors import UserError
    from mot.training.siamese import TrainParams, train

    for s in shares or ():
        if not 0 <= s <= 1:
            raise UserError(f"hist_share must be in [0, 1], got {s:g}")
    out_dir = Path(out_dir)
    roots = [Path(d) for d in data]
    result, per_seq = {"scenes": {}}, []
    imagenet = imagenet_mobilenet(pretrained)
    shipped_model = AppearanceModel(AppearanceParams(), "cpu") if shipped else None
    for scene in scenes:
        tr, val, _ = split(scene)
        weights = out_dir / f"loso_{scene}.pt"
        summary = None
        if not weights.is_file():
            params = from_dict(TrainParams, dict(overrides or {}, train=tr, val=val), "train")
            summary = train(roots, weights, params, reid=reid, cache=cache, progress=progress, pretrained=pretrained)
            summary.pop("history", None)
        model = AppearanceModel(AppearanceParams(weights=str(weights)), "cpu")
        trained_share = model.net.hist_share
        entry = {"train": tr, "val": val, "test": SCORED[scene], "training": summary,
                 "trained_share": trained_share if model.net.hist is not None else None}
        methods = {RECIPE: lambda e: e["recipe"]}
        # each model compared as the tracker compares it: shares by gap where it has them
        at_gap = model.by_gap.at_gap if model.by_gap is not None else None
        if shares:
            if model.net.hist is None:
                raise UserError(f"{weights}: --hist-share needs a model with a colour layer")
            at = {s: partial(_reweighted, hist_dim=model.net.hist.output_dim, trained_share=trained_share,
                             share=s) for s in shares}
            val_scene = validation_scene(scene)
            embedded = _embed_scene(roots, SCORED[val_scene], {"recipe": model.embed})
            by_share = {s: _scene_scores(embedded, {"m": at[s]}, gaps, at_gap and {"m": at_gap})["m"] for s in shares}
            chosen = choose_share(by_share, gaps)
            # a tracker knows how many frames separate a track from a detection: a share per gap
            by_gap = {g: choose_share(by_share, (g,)) for g in gaps}
            entry.update(val_scene=val_scene, chosen_share=chosen, chosen_share_by_gap=by_gap,
                         validation={str(s): {"criterion": share_criterion(v, gaps), "scores": v}
                                     for s, v in by_share.items()})
            if keep is not None:
                _save_embeddings(Path(keep), f"{scene}-val", SCORED[val_scene], embedded, model.by_gap)
            methods = {f"recipe, s={chosen:g} (chosen on {val_scene})": at[chosen],
                       f"recipe, s={trained_share:g} (as trained)": lambda e: e["recipe"]}
        embedders: dict[str, Embedder] = {"recipe": model.embed}
        if shipped_model is not None:
            embedders["shipped"] = shipped_model.embed
            methods["shipped siamese.pt"] = lambda e: e["shipped"]
        embedders["hist"], embedders["imagenet"] = luv_histograms, imagenet
        methods.update({label: (lambda e, key=key: e[key]) for key, label in BASELINES.items()})
        views = {label: at_gap for label in methods if label.startswith("recipe")} if at_gap else {}
        if shipped_model is not None and shipped_model.by_gap is not None:
            views["shipped siamese.pt"] = shipped_model.by_gap.at_gap
        embedded = _embed_scene(roots, SCORED[scene], embedders)
        if keep is not None:
            _save_embeddings(Path(keep), scene, SCORED[scene], embedded, model.by_gap)
        seq_scores = [score(boxes, {label: f(emb) for label, f in methods.items()}, gaps, views)
                      for boxes, emb in embedded]
        if shares:
            label = f"recipe, s per gap {'/'.join(f'{by_gap[g]:g}' for g in gaps)} (chosen on {val_scene})"
            for (boxes, emb), row in zip(embedded, seq_scores):
                row[label] = {g: score(boxes, {"m": at[by_gap[g]](emb)}, (g,), at_gap and {"m": at_gap})["m"][g]
                              for g in gaps}
            seq_scores = [{k: row[k] for k in sorted(row, key=lambda k: not k.startswith("recipe"))}
                          for row in seq_scores]
        # the method labels carry each fold's share: pooled rows use the fold-independent names
        generic = [{_generic(k): v for k, v in s.items()} for s in seq_scores]
        per_seq.extend(generic)
        entry["scores"] = seq_scores[0] if len(seq_scores) == 1 else pooled(seq_scores)
        entry["sequences"] = dict(zip(SCORED[scene], seq_scores))
        result["scenes"][scene] = entry
    result["pooled"] = pooled(per_seq)
    return result


def _reweighted(emb: dict, hist_dim: int, trained_share: float, share: float) -> np.ndarray:
    return reweight(emb["recipe"], hist_dim, trained_share, share)


def _save_embeddings(folder: Path, scene: str, names: list[str], embedded: list[tuple[dict, dict]],
                     by_gap=None) -> None:
    """Each sequence's boxes and embeddings (as the networks give them), and with ``by_gap`` (the
    recipe's ``SharesByGap``) its tables, so the studies of saved embeddings compare the recipe at
    each gap as the tracker does (:func:`saved_view`)."""
    folder.mkdir(parents=True, exist_ok=True)
    table = {} if by_gap is None else by_gap.table()
    for name, (boxes, emb) in zip(names, embedded):
        path = folder / f"{scene}_{name}.npz"
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **boxes, **{f"emb_{k}": v.astype(np.float32) for k, v in emb.items()}, **table)
        tmp.replace(path)


def saved_view(folder: Path, prefix: str, names: list[str]):
    """The recipe's ``(embeddings, gap) -> embeddings`` view saved beside its embeddings
    (``SharesByGap.at_gap``), or None: saved without shares by gap, or before they were saved."""
    from association.by_gap import SharesByGap

    with np.load(Path(folder) / f"{prefix}_{names[0]}.npz") as z:
        by_gap = SharesByGap.from_arrays(z)
    return by_gap.at_gap if by_gap is not None else None


def _generic(label: str) -> str:
    """A fold's method label without the fold's share value, for the rows pooled over folds."""
    if label.startswith("recipe, s=") and "chosen" in label:
        return "recipe, s chosen on validation"
    if label.startswith("recipe, s=") and "as trained" in label:
        return "recipe, s as trained"
    if label.startswith("recipe, s per gap"):
        return "recipe, s per gap chosen on validation"
    return label


# ----------------------------------------------------------------------------- topologies

def sequence_inputs(seq_dir: Path, patch: PatchParams, flow: FlowParams | None) -> tuple[dict, np.ndarray]:
    """Every considered ground-truth box's network input, through the run-time crop and flow path.

    Returns:
        (boxes: frames (M,), ids (M,), tlwh (M, 4); inputs (M, C, H, W) float32).
    """
    seq = open_sequence(seq_dir)
    gt = read_ground_truth(seq.gt_path)
    keep = gt.consider if gt.classes is None else gt.consider & (gt.classes == 1)
    index, computer = gt.index(), FlowComputer(flow) if flow else None
    rows_all, xs, prev = [], [], None
    for frame, image in seq.frames():
        rows = index.rows(frame)
        rows = rows[keep[rows]]
        x = crop_patches(image, gt.tlwh[rows], patch)
        if computer is not None:
            x = np.concatenate([x, crop_flow(computer.compute(prev, image), gt.tlwh[rows], flow, patch)], 1)
        rows_all.append(rows)
        xs.append(x)
        prev = image
    r = np.concatenate(rows_all)
    return {"frames": gt.frames[r], "ids": gt.ids[r], "tlwh": gt.tlwh[r]}, np.concatenate(xs)


class PairScorer:
    """Scores (row a, row b) pairs of precomputed inputs with any topology (larger: the same person)."""

    def __init__(self, net: torch.nn.Module, inputs: np.ndarray, batch: int = 128):
        self.net, self.inputs, self.batch = net.eval(), inputs, batch
        self.emb = None
        if not isinstance(net, JointNet):
            with torch.no_grad():
                self.emb = torch.cat([net(torch.from_numpy(inputs[i:i + batch])) for i in range(0, len(inputs), batch)])

    @torch.no_grad()
    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out = []
        for s in range(0, len(a), self.batch):
            ia, ib = torch.from_numpy(a[s:s + self.batch]), torch.from_numpy(b[s:s + self.batch])
            if isinstance(self.net, JointNet):
                out.append(self.net.pair_logits(torch.from_numpy(self.inputs[ia.numpy()]),
                                                torch.from_numpy(self.inputs[ib.numpy()])))
            elif isinstance(self.net, InNetworkNet):
                out.append(self.net.head_logits(self.emb[ia], self.emb[ib]))
            else:
                out.append(-torch.sqrt(((self.emb[ia] - self.emb[ib]) ** 2).sum(1) + 1e-12))
        return torch.cat(out).numpy() if out else np.zeros(0, np.float32)


def score_pairs(boxes: dict, scorer, gaps=(1, 10, 30), max_neg: int = 20000, seed: int = 0) -> dict:
    """AUC (random negatives, at most ``max_neg`` per gap), hard-negative AUC and rank-1 per gap."""
    from mot.studies.appearance import gap_pairs

    rng = np.random.default_rng(seed)
    frames, ids = boxes["frames"], boxes["ids"]
    row = {}
    for g in gaps:
        a, b, same = gap_pairs(frames, ids, g)
        neg = np.flatnonzero(~same)
        neg = rng.choice(neg, min(max_neg, len(neg)), replace=False) if len(neg) else neg
        pos = np.flatnonzero(same)
        s_pos, s_neg = scorer(a[pos], b[pos]), scorer(a[neg], b[neg])
        ha, hn = hard_negatives(frames, ids, boxes["tlwh"], g)
        s_hard = scorer(ha, hn)
        lab = lambda p, n: np.concatenate([np.ones(len(p), bool), np.zeros(len(n), bool)])  # noqa: E731
        correct = total = 0
        for f in np.unique(frames):
            gallery, queries = np.flatnonzero(frames == f), np.flatnonzero(frames == f + g)
            if len(gallery) < 2 or not len(queries):
                continue
            qa, ga = np.meshgrid(queries, gallery, indexing="ij")
            sc = scorer(ga.ravel(), qa.ravel()).reshape(qa.shape)
            present = np.isin(ids[queries], ids[gallery])
            correct += int((ids[gallery][np.argmax(sc, 1)] == ids[queries])[present].sum())
            total += int(present.sum())
        row[g] = {"auc": roc_auc(-np.concatenate([s_pos, s_neg]), lab(s_pos, s_neg)),
                  "auc_hard": roc_auc(-np.concatenate([s_pos, s_hard]), lab(s_pos, s_hard)),
                  "rank1": correct / total if total else float("nan"), "pos": len(pos), "neg": len(neg),
                  "queries": total, "correct": correct}
    return row


def topology_cost(net: torch.nn.Module, patch: PatchParams, channels: int, people=(10, 50), reps: int = 3) -> dict:
    """Network milliseconds per frame with N tracks and N detections (one thread as set by the caller).

    Branch topologies embed the N detections once (tracks keep their embeddings) and score the N x N
    pairs with their head; the joint topology runs the network on all N x N stacked pairs.
    """
    net = fuse_batch_norm(net.eval())
    out = {}
    for n in people:
        x = torch.randn(n, channels, patch.height, patch.width)
        ia, ib = (t.ravel() for t in torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij"))

        @torch.no_grad()
        def run():
            if isinstance(net, JointNet):
                for s in range(0, n * n, 256):
                    net.pair_logits(x[ia[s:s + 256]], x[ib[s:s + 256]])
            else:
                e = net(x)
                if isinstance(net, InNetworkNet):
                    net.head_logits(e[ia], e[ib])
                else:
                    torch.cdist(e, e)

        run()
        t0 = time.perf_counter()
        for _ in range(reps):
            run()
        out[n] = 1000 * (time.perf_counter() - t0) / reps
    return out


def compare_topologies(seq_dir: str | Path, weights: dict[str, str], gaps=(1, 10, 30)) -> dict:
    """Scores each topology's model on one held-out sequence and times it.

    Args:
        seq_dir: a held-out sequence with ground truth (all models must share patch and flow settings).
        weights: label -> weights file (any topology).
    """
    result, cache = {}, {}
    for label, path in weights.items():
        net, meta = load_weights(path)
        patch = PatchParams(meta["patch_height"], meta["patch_width"])
        flow = FlowParams(meta["flow_method"], meta["flow_downscale"], meta["flow_preset"]) if meta["use_flow"] else None
        key = (patch.height, patch.width, str(flow))
        if key not in cache:
            cache[key] = sequence_inputs(Path(seq_dir), patch, flow)
        boxes, inputs = cache[key]
        result[label] = {"topology": meta.get("topology", "cost_function"),
                         "scores": score_pairs(boxes, PairScorer(net, inputs), gaps),
                         "network_ms": topology_cost(net, patch, meta["in_channels"])}
    return result


# ----------------------------------------------------------------------------- diagnosis

def _load_saved(folder: Path, prefix: str, names: list[str]) -> list[tuple[dict, dict]]:
    from mot.errors import UserError

    paths = [folder / f"{prefix}_{n}.npz" for n in names]
    if not all(p.is_file() for p in paths):
        raise UserError(f"{folder}: no saved embeddings {paths[0].name} (run appearance_loso.py --keep-embeddings)")
    out = []
    for p in paths:
        with np.load(p) as z:
            out.append(({k: z[k] for k in ("frames", "ids", "tlwh")},
                        {k[4:]: z[k].astype(np.float32) for k in z.files if k.startswith("emb_")}))
    return out


def _unit(e: np.ndarray) -> np.ndarray:
    return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)


def share_sweep(folder: str | Path, scene: str, hist_dim: int, trained_share: float, shares, gaps=(1, 10, 30),
                baselines=("hist", "imagenet")) -> dict:
    """Scores of a scene's saved embeddings (``run_loso(keep=...)``) at each share, and each part alone.

    A diagnosis on the reported scene, not a choice: it shows what each share would have scored,
    never which to use. ``baselines``: saved embedder keys scored beside (``hist``, ``imagenet``,
    ``shipped``).

    Returns:
        Scores as :func:`mot.studies.appearance.score` (the scene's sequences pooled), rows
        ``s=<share>``, ``colour part alone``, ``CNN part alone`` and the baselines.
    """
    methods = {f"s={s:g}": partial(_reweighted, hist_dim=hist_dim, trained_share=trained_share, share=s)
               for s in shares}
    methods["colour part alone"] = lambda e: _unit(e["recipe"][:, :hist_dim])
    methods["CNN part alone"] = lambda e: _unit(e["recipe"][:, hist_dim:])
    for key in baselines:
        methods[key] = lambda e, key=key: e[key]
    return _scene_scores(_load_saved(Path(folder), scene, SCORED[scene]), methods, gaps)


def choose_saved(folder: str | Path, scene: str, hist_dim: int, trained_share: float, shares,
                 gaps=(1, 10, 30)) -> dict:
    """The share chosen on the fold's saved validation embeddings (one share, and one per gap), and
    the left-out scene's saved embeddings scored with each: ``run_loso``'s choice with another grid,
    without running a network.

    Returns:
        ``{"chosen_share", "chosen_share_by_gap", "validation": {share: criterion}, "scores": {row: ...}}``.
    """
    folder = Path(folder)
    at = {s: partial(_reweighted, hist_dim=hist_dim, trained_share=trained_share, share=s) for s in shares}
    val = _load_saved(folder, f"{scene}-val", SCORED[validation_scene(scene)])
    by_share = {s: _scene_scores(val, {"m": at[s]}, gaps)["m"] for s in shares}
    chosen = choose_share(by_share, gaps)
    by_gap = {g: choose_share(by_share, (g,)) for g in gaps}
    test = _load_saved(folder, scene, SCORED[scene])
    per_seq = []
    for boxes, emb in test:
        row = score(boxes, {"one share": at[chosen](emb)}, gaps)
        row["a share per gap"] = {g: score(boxes, {"m": at[by_gap[g]](emb)}, (g,))["m"][g] for g in gaps}
        per_seq.append(row)
    return {"chosen_share": chosen, "chosen_share_by_gap": by_gap,
            "validation": {str(s): share_criterion(v, gaps) for s, v in by_share.items()},
            "scores": per_seq[0] if len(per_seq) == 1 else pooled(per_seq), "sequences": per_seq}


def choose_on_other_folds(folder: str | Path, scenes: list[str], hist_dim: int, trained_share: float, shares,
                          gaps=(1, 10, 30)) -> dict:
    """For each scene, the share chosen on the other scenes' left-out scores, pooled, then that scene scored.

    Every scene in ``scenes`` must have saved left-out embeddings (``run_loso(keep=...)``): scene
    Y's are those of the model that never saw Y. The share reported for scene X is the one with the
    best :func:`share_criterion` pooled over the other scenes (one share, and one per gap): X's own
    scores never take part. Many more pairs than one validation scene, so less noise.

    Returns:
        ``{scene: {"chosen_share", "chosen_share_by_gap", "scores", "sequences"}}``.
    """
    folder = Path(folder)
    at = {s: partial(_reweighted, hist_dim=hist_dim, trained_share=trained_share, share=s) for s in shares}
    per_scene = {}
    for scene in scenes:  # every sequence at every share, once
        per_scene[scene] = [score(boxes, {s: at[s](emb) for s in shares}, gaps)
                            for boxes, emb in _load_saved(folder, scene, SCORED[scene])]
    out = {}
    for scene in scenes:
        others = [seq for other in scenes if other != scene for seq in per_scene[other]]
        by_share = {s: pooled([{"m": seq[s]} for seq in others])["m"] for s in shares}
        chosen = choose_share(by_share, gaps)
        by_gap = {g: choose_share(by_share, (g,)) for g in gaps}
        seqs = [{"one share": seq[chosen], "a share per gap": {g: seq[by_gap[g]][g] for g in gaps}}
                for seq in per_scene[scene]]
        out[scene] = {"chosen_share": chosen, "chosen_share_by_gap": by_gap,
                      "scores": seqs[0] if len(seqs) == 1 else pooled(seqs), "sequences": seqs}
    return out


def choose_recipe_on_other_folds(folders: dict[str, str | Path], scenes: list[str], gaps=(1, 10, 30)) -> dict:
    """For each scene, the training recipe chosen on the other scenes' left-out scores, then that scene scored.

    ``folders`` maps a recipe's label to what ``run_loso(keep=...)`` saved for it (one model per
    left-out scene, each scene's embeddings from the model that never saw it, used as trained).
    The recipe reported for scene X is the one with the best :func:`share_criterion` pooled over
    the other scenes: X's own scores never take part, so comparing recipes on the left-out scenes
    does not choose on the scene reported. The baselines (``hist``, ``imagenet``) come from the
    first folder.

    Returns:
        ``{scene: {"chosen_recipe", "criteria": {label: value}, "scores", "sequences"}}``; ``scores``
        rows: ``chosen on the other folds``, every recipe, and the baselines.
    """
    per_scene = {}
    for scene in scenes:
        saved = {label: _load_saved(Path(f), scene, SCORED[scene]) for label, f in folders.items()}
        first = next(iter(saved.values()))
        per_scene[scene] = []
        for i, (boxes, emb) in enumerate(first):
            rows = {label: saved[label][i][1]["recipe"] for label in folders}
            rows.update({key: emb[key] for key in ("hist", "imagenet") if key in emb})
            per_scene[scene].append(score(boxes, rows, gaps))
    out = {}
    for scene in scenes:
        others = [seq for other in scenes if other != scene for seq in per_scene[other]]
        by_recipe = {label: pooled([{"m": seq[label]} for seq in others])["m"] for label in folders}
        chosen = choose_share(by_recipe, gaps)
        seqs = [{"chosen on the other folds": seq[chosen], **seq} for seq in per_scene[scene]]
        out[scene] = {"chosen_recipe": chosen, "criteria": {k: share_criterion(v, gaps) for k, v in by_recipe.items()},
                      "scores": seqs[0] if len(seqs) == 1 else pooled(seqs), "sequences": seqs}
    return out


def overlapped(frames: np.ndarray, tlwh: np.ndarray, iou: float = 0.5) -> np.ndarray:
    """(M,) bool: each box overlaps another box of its own frame by more than ``iou``
    (``association.crowd.overlapped_boxes``, frame by frame)."""
    from association.crowd import overlapped_boxes

    out = np.zeros(len(frames), bool)
    for f in np.unique(frames):
        rows = np.flatnonzero(frames == f)
        out[rows] = overlapped_boxes(tlwh[rows], iou)
    return out


class CrowdShareScorer:
    """Pair scores of saved embeddings with the colour share of a pair decided by crowding.

    A pair in which either box is :func:`overlapped` is compared at colour share ``share``, every
    other pair at the trained share (what :func:`reweight` does to all pairs). Both parts' squared
    distances are computed once for every pair one gap apart, so scoring many shares costs one pass.
    A scorer for :func:`score_pairs` (similarity: minus the distance); set ``share`` between calls.
    """

    def __init__(self, boxes: dict, emb: np.ndarray, hist_dim: int, trained_share: float, gaps,
                 iou: float = 0.5):
        from mot.errors import UserError
        from mot.studies.appearance import gap_pairs

        if not 0 < hist_dim < emb.shape[1]:
            raise UserError(f"--hist-dim {hist_dim} does not split embeddings of {emb.shape[1]} numbers "
                            "(the colour layer's output comes first: stripes x 512)")
        self.crowd = overlapped(boxes["frames"], boxes["tlwh"], iou)
        self.trained, self.share, self.m = trained_share, trained_share, len(emb)
        # every pair any cell at these gaps compares is one gap apart, the earlier box first
        pairs = [gap_pairs(boxes["frames"], boxes["ids"], g)[:2] for g in gaps]
        a = np.concatenate([p[0] for p in pairs]) if pairs else np.zeros(0, np.int64)
        b = np.concatenate([p[1] for p in pairs]) if pairs else np.zeros(0, np.int64)
        self.keys, first = np.unique(a * self.m + b, return_index=True)
        a, b = a[first], b[first]
        self.colour, self.cnn = np.zeros(len(a)), np.zeros(len(a))
        for s in range(0, len(a), 2048):   # in chunks: a 16-stripe colour part is 15,360 numbers a box
            d = (emb[a[s:s + 2048]] - emb[b[s:s + 2048]]) ** 2
            self.colour[s:s + 2048], self.cnn[s:s + 2048] = d[:, :hist_dim].sum(1), d[:, hist_dim:].sum(1)

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        key = a * self.m + b
        i = np.minimum(np.searchsorted(self.keys, key), max(len(self.keys) - 1, 0))
        if len(key) and (not len(self.keys) or not np.array_equal(self.keys[i], key)):
            raise ValueError("CrowdShareScorer: a pair that is not one of the given gaps apart")
        crowded = self.crowd[a] | self.crowd[b]
        w_colour = np.where(crowded, self.share / self.trained, 1.0)
        w_cnn = np.where(crowded, (1 - self.share) / (1 - self.trained), 1.0)
        return -np.sqrt(w_colour * self.colour[i] + w_cnn * self.cnn[i])


def crowd_share_study(folder: str | Path, scenes: list[str], shares, hist_dim: int = 2048,
                      trained_share: float = 0.5, iou: float = 0.5, gaps=(1, 10, 30)) -> dict:
    """The colour share of crowded pairs (either box overlapped), chosen per gap on the other folds.

    A tracker knows which boxes overlap another, and where they do, crops of different people share
    their pixels. Each scene's saved left-out embeddings (``run_loso(keep=...)``) are scored with
    crowded pairs at each share and the others at the trained share; the share reported for scene X
    at gap g is the one with the best :func:`share_criterion` at g pooled over the other scenes
    (X's own scores never take part).

    Returns:
        ``{scene: {"chosen_share_by_gap", "scores", "wins", "crowded"}, "pooled": {...}}`` (the
        pooled entry's ``all_scenes_share_by_gap``: the shares chosen on every scene, for a model
        trained on all of them); ``scores``
        rows ``crowd share (other folds)``, ``trained share`` and the baselines; ``wins`` the cells
        each of the first two wins against both baselines; ``crowded`` the fraction of boxes overlapped.

    Raises:
        UserError: fewer than two scenes, a share outside [0, 1], a trained share outside (0, 1), an
            IoU outside [0, 1), or missing embeddings.
    """
    from mot.errors import UserError

    if len(scenes) < 2:
        raise UserError("choosing on the other folds needs at least two scenes")
    if not all(0 <= s <= 1 for s in shares) or not 0 < trained_share < 1:
        raise UserError(f"shares must be in [0, 1] and the trained share in (0, 1), got {list(shares)}, "
                        f"{trained_share:g}")
    if not 0 <= iou < 1:
        raise UserError(f"--crowd-iou must be in [0, 1), got {iou:g}")
    per_seq, crowded = {}, {}
    for scene in scenes:
        per_seq[scene], n = [], []
        for boxes, emb in _load_saved(Path(folder), scene, SCORED[scene]):
            scorer = CrowdShareScorer(boxes, emb["recipe"], hist_dim, trained_share, gaps, iou)
            n.append(scorer.crowd)
            row = {}
            for s in dict.fromkeys([trained_share, *shares]):
                scorer.share = s
                row[s] = score_pairs(boxes, scorer, gaps, max_neg=1 << 62)
            row.update({name: score(boxes, {name: emb[b]}, gaps)[name] for b, name in BASELINES.items()})
            per_seq[scene].append(row)
        crowded[scene] = float(np.concatenate(n).mean())
    out, chosen_rows = {}, []
    for scene in scenes:
        others = [seq for other in scenes if other != scene for seq in per_seq[other]]
        by_gap = {g: choose_share({s: pooled([{"m": seq[s]} for seq in others])["m"] for s in shares}, (g,))
                  for g in gaps}
        seqs = [{"crowd share (other folds)": {g: seq[by_gap[g]][g] for g in gaps},
                 "trained share": seq[trained_share], **{name: seq[name] for name in BASELINES.values()}}
                for seq in per_seq[scene]]
        chosen_rows += seqs
        scores = seqs[0] if len(seqs) == 1 else pooled(seqs)
        base = [scores[name] for name in BASELINES.values()]
        out[scene] = {"chosen_share_by_gap": by_gap, "scores": scores, "crowded": crowded[scene],
                      "wins": {row: wins(scores[row], base, gaps) for row in ("crowd share (other folds)",
                                                                              "trained share")}}
    scores = pooled(chosen_rows)
    base = [scores[name] for name in BASELINES.values()]
    everything = [seq for scene in scenes for seq in per_seq[scene]]
    out["pooled"] = {"scores": scores, "wins": {row: wins(scores[row], base, gaps)
                                                for row in ("crowd share (other folds)", "trained share")},
                     # the table for a model trained on every scene (what ships), chosen on all of them
                     "all_scenes_share_by_gap": {g: choose_share({s: pooled([{"m": seq[s]} for seq in everything])["m"]
                                                                  for s in shares}, (g,)) for g in gaps}}
    return out


def _per_gap(shares: dict) -> str:
    return " / ".join(f"{s:g}" for s in shares.values())


def crowd_share_text(result: dict) -> str:
    """:func:`crowd_share_study`'s result: per scene (pooled first) the shares, cells won and table."""
    from mot.studies.appearance import format_table

    parts = []
    for scene in ["pooled", *[s for s in result if s != "pooled"]]:
        r = result[scene]
        won = ", ".join(f"{row} {n}" for row, n in r["wins"].items())
        gaps = tuple(next(iter(r["scores"].values())))
        head = f"{scene}: cells won of {3 * len(gaps)} against both baselines: {won}"
        if scene == "pooled":
            head += f"; shares chosen on every scene (to ship) {_per_gap(r['all_scenes_share_by_gap'])}"
        else:
            head += (f"; crowded share per gap {_per_gap(r['chosen_share_by_gap'])}"
                     f"; {100 * r['crowded']:.1f}% of boxes overlapped")
        parts.append(f"{head}\n{format_table(r['scores'], gaps)}")
    return "\n\n".join(parts)


def share_study(folder: str | Path, scenes: list[str], shares, mode: str = "sweep", hist_dim: int = 2048,
                trained_share: float = 0.5, crowd_iou: float = 0.5) -> dict:
    """``scripts/appearance_share_sweep.py``: one of the studies of saved embeddings above, checked.

    Args:
        mode: ``sweep`` (:func:`share_sweep` per scene), ``validation`` (:func:`choose_saved` per
            scene), ``other-folds`` (:func:`choose_on_other_folds`) or ``crowd``
            (:func:`crowd_share_study`, crowded above ``crowd_iou``).

    Returns:
        Per scene the study's result; the choosing modes add ``pooled`` (every scored sequence).

    Raises:
        UserError: a share outside [0, 1], a trained share outside (0, 1), an unknown mode, too few
            scenes for ``other-folds``, or missing embeddings.
    """
    from mot.errors import UserError

    for s in shares:
        if not 0 <= s <= 1:
            raise UserError(f"shares must be in [0, 1], got {s:g}")
    if not 0 < trained_share < 1:
        raise UserError(f"the trained share must be in (0, 1), got {trained_share:g}")
    if mode == "sweep":
        return {scene: share_sweep(folder, scene, hist_dim, trained_share, shares) for scene in scenes}
    if mode == "crowd":
        return crowd_share_study(folder, scenes, shares, hist_dim, trained_share, crowd_iou)
    if mode == "validation":
        result = {scene: choose_saved(folder, scene, hist_dim, trained_share, shares) for scene in scenes}
    elif mode == "other-folds":
        if len(scenes) < 2:
            raise UserError("choosing on the other folds needs at least two scenes")
        result = choose_on_other_folds(folder, scenes, hist_dim, trained_share, shares)
    else:
        raise UserError(f"unknown study {mode!r} (sweep, validation, other-folds, crowd)")
    result["pooled"] = pooled([s for r in result.values() for s in r.pop("sequences")])
    return result


def recipe_study(folders: dict[str, str | Path], scenes: list[str]) -> dict:
    """``appearance_share_sweep.py --recipes``: :func:`choose_recipe_on_other_folds`, checked, with ``pooled``.

    Raises:
        UserError: fewer than two scenes or two recipes, a missing folder, or missing embeddings.
    """
    from mot.errors import UserError

    if len(scenes) < 2 or len(folders) < 2:
        raise UserError("comparing recipes on the other folds needs at least two scenes and two recipes")
    for label, folder in folders.items():
        if not Path(folder).is_dir():
            raise UserError(f"--recipes {label}: no folder {folder}")
    result = choose_recipe_on_other_folds(folders, scenes)
    result["pooled"] = pooled([s for r in result.values() for s in r.pop("sequences")])
    return result


METRICS = ("auc", "auc_hard", "rank1")


def wins(row: dict, baselines: list[dict], gaps=(1, 10, 30)) -> int:
    """Cells (gap x AUC, hard AUC, rank-1) where ``row`` scores above every one of ``baselines``."""
    return sum(all(row[g][m] > b[g][m] for b in baselines) for g in gaps for m in METRICS)


def _mean_row(rows: list[dict], gaps) -> dict:
    return {g: {m: float(np.mean([r[g][m] for r in rows])) for m in METRICS} for g in gaps}


def seed_study(folders: dict[str, str | Path], scenes: list[str], gaps=(1, 10, 30)) -> dict:
    """One recipe trained with several seeds: how much of a comparison with the baselines is the seed.

    ``folders`` maps a seed's label to what ``run_loso(keep=...)`` saved for the recipe trained with
    that seed (one model per left-out scene). Each scene is scored with every seed's model, the mean
    over seeds of every cell is a row of its own, and each seed's rank-1 is compared with each
    baseline's query by query (:func:`~mot.studies.appearance.discordant`, with the exact McNemar
    p-value): a cell one seed wins and another loses by a query or two is a tie, not a result.

    Returns:
        ``{scene: {"scores", "wins", "paired"}, "pooled": {...}}``: ``scores`` rows are the seeds,
        ``mean of seeds`` and the baselines (from the first folder); ``wins`` the cells each row
        wins against both baselines; ``paired[label][baseline][gap]`` = ``{"seed_only",
        "baseline_only", "p"}``.

    Raises:
        UserError: fewer than two seeds, a missing folder or embeddings, or folders whose saved boxes
            differ (not the same scenes).
    """
    from mot.errors import UserError

    if len(folders) < 2:
        raise UserError("comparing seeds needs at least two --seeds folders")
    for label, folder in folders.items():
        if not Path(folder).is_dir():
            raise UserError(f"--seeds {label}: no folder {folder}")
    labels = list(folders)
    per_scene: dict[str, list] = {}
    counts: dict[str, dict] = {}
    for scene in scenes:
        saved = {label: _load_saved(Path(f), scene, SCORED[scene]) for label, f in folders.items()}
        views = {label: v for label, f in folders.items()
                 if (v := saved_view(Path(f), scene, SCORED[scene])) is not None}
        first = saved[labels[0]]
        seqs = []
        tally = {label: {b: {g: [0, 0] for g in gaps} for b in BASELINES} for label in labels}
        for i, (boxes, emb) in enumerate(first):
            for label in labels[1:]:
                other = saved[label][i][0]
                if not all(np.array_equal(boxes[k], other[k]) for k in ("frames", "ids")):
                    raise UserError(f"--seeds {label}: {SCORED[scene][i]} has other boxes than in "
                                    f"{folders[labels[0]]} (not the same benchmark)")
            rows = {label: saved[label][i][1]["recipe"] for label in labels}
            # each method's rank-1 once per gap (a seed's label may be any string, so keyed apart)
            hits = {(kind, name, g): rank1_hits(boxes["frames"], boxes["ids"],
                                                views[name](e, g) if kind == "seed" and name in views else e, g)[1]
                    for kind, named in (("seed", rows), ("baseline", {b: emb[b] for b in BASELINES}))
                    for name, e in named.items() for g in gaps}
            for label in labels:
                for b in BASELINES:
                    for g in gaps:
                        a_only, b_only = discordant(hits["seed", label, g], hits["baseline", b, g])
                        tally[label][b][g][0] += a_only
                        tally[label][b][g][1] += b_only
            seqs.append(score(boxes, {**rows, **{BASELINES[b]: emb[b] for b in BASELINES}}, gaps, views))
        per_scene[scene], counts[scene] = seqs, tally

    def summary(seqs: list[dict], tally: dict) -> dict:
        scores = seqs[0] if len(seqs) == 1 else pooled(seqs)
        scores = {**{label: scores[label] for label in labels},
                  "mean of seeds": _mean_row([scores[label] for label in labels], gaps),
                  **{name: scores[name] for name in BASELINES.values()}}
        base = [scores[name] for name in BASELINES.values()]
        paired = {label: {b: {g: {"seed_only": t[0], "baseline_only": t[1], "p": mcnemar_p(*t)}
                              for g, t in by_gap.items()} for b, by_gap in tally[label].items()}
                  for label in labels}
        return {"scores": scores, "wins": {row: wins(scores[row], base, gaps) for row in [*labels, "mean of seeds"]},
                "paired": paired}

    out = {scene: summary(per_scene[scene], counts[scene]) for scene in scenes}
    total = {label: {b: {g: [sum(counts[s][label][b][g][k] for s in scenes) for k in (0, 1)] for g in gaps}
                     for b in BASELINES} for label in labels}
    out["pooled"] = summary([seq for scene in scenes for seq in per_scene[scene]], total)
    return out


def seed_study_text(result: dict, gaps=(1, 10, 30)) -> str:
    """:func:`seed_study`'s result: per scene (pooled first) the cells won, the table, and the paired
    rank-1 comparison with a baseline wherever a seed does not score above it."""
    from mot.studies.appearance import format_table

    parts = []
    for scene in ["pooled", *[s for s in result if s != "pooled"]]:
        r = result[scene]
        won = ", ".join(f"{row} {n}" for row, n in r["wins"].items())
        lines = [f"{scene}: cells won of {3 * len(gaps)} against both baselines: {won}", format_table(r["scores"], gaps)]
        for b, name in BASELINES.items():
            for g in gaps:
                if all(r["scores"][label][g]["rank1"] > r["scores"][name][g]["rank1"] for label in r["paired"]):
                    continue
                for label, by_base in r["paired"].items():
                    c = by_base[b][g]
                    lines.append(f"rank-1 at {g}, {label} against {name}: {c['seed_only']} queries only the seed "
                                 f"gets right, {c['baseline_only']} only the baseline (McNemar p = {c['p']:.3f})")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def share_study_text(result: dict, mode: str = "sweep") -> str:
    """:func:`share_study`'s result as markdown tables."""
    from mot.studies.appearance import format_table

    if mode == "sweep":
        return "\n\n".join(f"{scene}\n{format_table(rows)}" for scene, rows in result.items())
    if mode == "crowd":
        return crowd_share_text(result)
    parts = [f"pooled\n{format_table(result['pooled'])}"]
    for scene, r in result.items():
        if scene != "pooled" and mode == "recipes":
            criteria = ", ".join(f"{k} {v:.4f}" for k, v in r["criteria"].items())
            parts.append(f"{scene}: {r['chosen_recipe']} chosen on the other folds ({criteria})\n"
                         f"{format_table(r['scores'])}")
        elif scene != "pooled":
            per_gap = " / ".join(f"{s:g}" for s in r["chosen_share_by_gap"].values())
            parts.append(f"{scene}: one share {r['chosen_share']:g}, per gap {per_gap}\n{format_table(r['scores'])}")
    return "\n\n".join(parts)
