"""How good are the refiner's masks? Mask IoU and MOTS HOTA against the filled-box baseline, and
what the mask branch costs per frame (``scripts/eval_masks.py``; results in docs/masks.md).

- :func:`evaluate_masks`: a tracker run's ``<SEQ>.masks.txt`` and ``<SEQ>.txt`` against the MOTS
  ground truth of the sequence (``data/masks/MOTS/<SEQ>/*.png``). The baseline fills each output
  box (composed with the same one-owner-per-pixel rule, :func:`mot.masks.compose`).
  *Mask IoU of matched tracks*: the output boxes of a frame are matched one-to-one to the MOT17
  ground-truth boxes (Hungarian on IoU, at least ``min_iou``); a pair whose gt id n is a MOTS
  instance of that frame compares the row's mask with instance n's (a row without a mask scores
  0). The mean is over the same pairs for masks and filled boxes.
  *MOTS HOTA*: TrackEval's MOTS Challenge dataset class (its preprocessing, ignore regions
  included) and its HOTA metric on the two MOTS files.
- :func:`refiner_cost`: ms per frame of the refiner's search with and without the mask branch,
  for N tracks on one frame, one thread.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from mot.errors import UserError
from mot.geometry import iou_matrix_tlwh
from mot.io import PEDESTRIAN, read_ground_truth, read_results
from mot.masks import (PastedMask, box_mask, decode_rle, format_mots, frame_lines, read_mots,
                       require_pycocotools)

#: MOTS ids: class * 1000 + instance; ignore regions are class 10, id 10000.
MOTS_IGNORE_ID, MOTS_IGNORE_CLASS = 10000, 10


def mots_gt_lines(mask_dir: Path) -> tuple[str, tuple[int, int], int]:
    """The MOTS ground truth text of a sequence from its instance PNGs (0 background, n instance
    n, 255 ignore), with the image size and the number of frames."""
    pngs = sorted(Path(mask_dir).glob("*.png"))
    if not pngs:
        raise UserError(f"{mask_dir}: no MOTS mask PNGs")
    out, hw = [], None
    for path in pngs:
        labels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if labels is None:
            raise UserError(f"{path}: unreadable mask")
        hw = labels.shape[:2]
        frame = int(path.stem)
        for n in np.unique(labels[labels > 0]):
            m = labels == n
            ys, xs = np.nonzero(m)
            pm = PastedMask(int(xs.min()), int(ys.min()), m[ys.min():ys.max() + 1, xs.min():xs.max() + 1])
            ids = [MOTS_IGNORE_ID] if n == 255 else [2000 + int(n)]
            line = format_mots(frame, ids, [_rle(pm, hw)], hw)
            if n == 255:
                line = line.replace(f" {MOTS_IGNORE_ID} 2 ", f" {MOTS_IGNORE_ID} {MOTS_IGNORE_CLASS} ")
            out.append(line)
    return "".join(out), hw, int(pngs[-1].stem)


def _rle(mask: PastedMask, hw) -> str:
    from mot.masks import encode_rle
    return encode_rle(mask, hw)


def filled_box_lines(results_txt: Path, image_hw: tuple[int, int]) -> str:
    """The baseline MOTS text: every output box filled, one owner per pixel (as the masks are)."""
    res = read_results(results_txt)
    out = []
    for f in np.unique(res.frames):
        rows = np.nonzero(res.frames == f)[0]
        out.append(frame_lines(int(f), res.ids[rows], res.tlwh[rows], [box_mask(b, image_hw) for b in res.tlwh[rows]],
                               image_hw))
    return "".join(out)


def matched_mask_iou(seq_folder: Path, mask_dir: Path, results_txt: Path, mots_files: dict[str, Path],
                     min_iou: float = 0.5) -> dict:
    """Mean mask IoU of the output rows matched to ground truth, for each MOTS file of the run.

    Args:
        seq_folder: the MOT17 sequence (``gt/gt.txt``).
        mask_dir: its MOTS instance PNGs.
        results_txt: the run's box results (the rows that are matched).
        mots_files: name -> a MOTS file of the same rows (``masks``, ``boxes``).

    Returns:
        ``{"pairs": P, name: mean IoU, ...}``.
    """
    gt = read_ground_truth(Path(seq_folder) / "gt" / "gt.txt")
    keep = gt.consider & ((gt.classes == PEDESTRIAN) if gt.classes is not None else True)
    res = read_results(results_txt)
    files = {k: read_mots(v) for k, v in mots_files.items()}
    sums = {k: 0.0 for k in files}
    pairs = 0
    for path in sorted(Path(mask_dir).glob("*.png")):
        f = int(path.stem)
        rows = np.nonzero(res.frames == f)[0]
        g = np.nonzero(keep & (gt.frames == f))[0]
        if not len(rows) or not len(g):
            continue
        iou = iou_matrix_tlwh(res.tlwh[rows], gt.tlwh[g])
        r, c = linear_sum_assignment(-iou)
        ok = iou[r, c] >= min_iou
        if not ok.any():
            continue
        labels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        hw = labels.shape[:2]
        decoded = {k: {i: (h, w, rle) for i, _, h, w, rle in v.get(f, [])} for k, v in files.items()}
        for ri, gi in zip(r[ok], c[ok]):
            n = int(gt.ids[g[gi]])
            if n >= 255 or not (labels == n).any():
                continue
            true = labels == n
            track = int(res.ids[rows[ri]])
            pairs += 1
            for k in files:
                entry = decoded[k].get(track)
                if entry is None:
                    continue
                pred = decode_rle(entry[2], hw)
                sums[k] += float((pred & true).sum() / max((pred | true).sum(), 1))
    return {"pairs": pairs, **{k: (v / pairs if pairs else None) for k, v in sums.items()}}


def mots_hota(gt_lines: str, tracker_files: dict[str, Path], seq: str, length: int) -> dict:
    """HOTA, DetA and AssA (in %) of MOTS files through TrackEval's MOTS Challenge dataset class."""
    require_pycocotools()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            from trackeval.datasets import MOTSChallenge
            from trackeval.metrics import HOTA
    except ImportError:
        raise UserError("MOTS HOTA needs TrackEval: pip install --no-deps trackeval==1.3.0") from None
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "gt").mkdir()
        (root / "gt" / f"{seq}.txt").write_text(gt_lines)
        for name, path in tracker_files.items():
            (root / "trackers" / name / "data").mkdir(parents=True)
            (root / "trackers" / name / "data" / f"{seq}.txt").write_text(Path(path).read_text())
        config = {"GT_FOLDER": str(root / "gt"), "TRACKERS_FOLDER": str(root / "trackers"),
                  "OUTPUT_FOLDER": str(root / "out"), "TRACKERS_TO_EVAL": list(tracker_files),
                  "SKIP_SPLIT_FOL": True, "SEQ_INFO": {seq: length}, "GT_LOC_FORMAT": "{gt_folder}/{seq}.txt",
                  "PRINT_CONFIG": False}
        with contextlib.redirect_stdout(io.StringIO()):
            dataset = MOTSChallenge(config)
            metric = HOTA()
            for name in tracker_files:
                raw = dataset.get_raw_seq_data(name, seq)
                data = dataset.get_preprocessed_seq_data(raw, "pedestrian")
                res = metric.eval_sequence(data)
                out[name] = {k: round(100 * float(np.mean(res[k])), 2) for k in ("HOTA", "DetA", "AssA")}
    return out


def evaluate_masks(seq_folder: str | Path, mask_dir: str | Path, run_dir: str | Path, min_iou: float = 0.5) -> dict:
    """Masks of a tracker run vs filled boxes on one sequence: mask IoU of matched rows and MOTS HOTA.

    Writes ``run_dir/<SEQ>.boxes_filled.txt`` (the baseline) and ``run_dir/<SEQ>.mask_eval.json``.
    """
    seq_folder, run_dir = Path(seq_folder), Path(run_dir)
    seq = seq_folder.name
    results_txt, masks_txt = run_dir / f"{seq}.txt", run_dir / f"{seq}.masks.txt"
    for p in (results_txt, masks_txt):
        if not p.is_file():
            raise UserError(f"{p}: not found (run scripts/run_mot.py with --set refiner.enabled=true refiner.mask=true)")
    gt_lines, hw, length = mots_gt_lines(Path(mask_dir))
    boxes_txt = run_dir / f"{seq}.boxes_filled.txt"
    from mot.io import atomic_write_text
    atomic_write_text(boxes_txt, filled_box_lines(results_txt, hw))
    files = {"masks": masks_txt, "boxes": boxes_txt}
    iou = matched_mask_iou(seq_folder, Path(mask_dir), results_txt, files, min_iou)
    hota = mots_hota(gt_lines, files, seq, length)
    report = {"sequence": seq, "matched_pairs": iou["pairs"],
              "mask_iou": {k: round(iou[k], 4) if iou[k] is not None else None for k in files},
              "mots": hota}
    atomic_write_text(run_dir / f"{seq}.mask_eval.json", json.dumps(report, indent=1) + "\n")
    return report


def refiner_cost(image_bgr: np.ndarray, counts: list[int], mask_weights: str | None = "siammask.pt",
                 repeats: int = 5, seed: int = 0) -> list[dict]:
    """ms per frame of the refiner's per-frame work for N tracks, one thread, without and with masks.

    Per frame the refiner searches every track (:meth:`mot.refiner.SiamRPN.search`) and takes new
    templates for them (``templates``); with masks the search also runs the mask head and every
    mask is pasted into the frame (``mot.masks.paste``). Boxes are person-shaped, at random places.

    Returns:
        One row per N: ``tracks``, ``search_ms``, ``search_mask_ms``, ``paste_ms`` (medians over ``repeats``).
    """
    import torch

    from mot.masks import paste
    from mot.refiner import SiamRPN

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    rng = np.random.default_rng(seed)
    h, w = image_bgr.shape[:2]
    plain, masked = SiamRPN(device="cpu"), SiamRPN(device="cpu", mask_weights=mask_weights)
    rows = []
    for n in counts:
        bh = rng.uniform(0.15, 0.5, n) * h
        tlwh = np.stack([rng.uniform(0, w - 0.4 * bh), rng.uniform(0, h - bh), 0.4 * bh, bh], axis=1).astype(np.float32)
        times = {"search_ms": [], "search_mask_ms": [], "paste_ms": []}
        for _ in range(repeats):
            frame = image_bgr.copy()   # a new frame object: the crop pyramid is rebuilt as in tracking
            t0 = time.perf_counter()
            plain.search(frame, plain.templates(frame, tlwh), tlwh)
            times["search_ms"].append(time.perf_counter() - t0)
            frame = image_bgr.copy()
            t0 = time.perf_counter()
            found = masked.search(frame, masked.templates(frame, tlwh), tlwh, masks=True)
            t1 = time.perf_counter()
            for prob, window in zip(found[2], found[3]):
                paste(prob, window, (h, w), 0.5)
            t2 = time.perf_counter()
            times["search_mask_ms"].append(t1 - t0)
            times["paste_ms"].append(t2 - t1)
        rows.append({"tracks": n, **{k: round(1000 * float(np.median(v)), 1) for k, v in times.items()}})
    return rows


def save_video_frames(video: str | Path, frames: list[int], pattern: str | Path, max_width: int = 960,
                      quality: int = 85) -> list[Path]:
    """Saves some frames of a video as small JPEGs (for the docs).

    Args:
        video: the video file (``--save-video``'s output).
        frames: 1-based frame numbers.
        pattern: the output path with ``{frame}`` in it, e.g. ``docs/images/siammask_{frame}.jpg``.
        max_width: frames wider than this are shrunk (area averaging).
        quality: JPEG quality.
    """
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise UserError(f"{video}: not a readable video")
    out, want, n = [], set(frames), 0
    try:
        while want:
            ok, image = cap.read()
            if not ok:
                break
            n += 1
            if n not in want:
                continue
            want.discard(n)
            if image.shape[1] > max_width:
                scale = max_width / image.shape[1]
                image = cv2.resize(image, (max_width, round(image.shape[0] * scale)), interpolation=cv2.INTER_AREA)
            path = Path(str(pattern).format(frame=n))
            path.parent.mkdir(parents=True, exist_ok=True)
            ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
            path.write_bytes(data.tobytes())
            out.append(path)
    finally:
        cap.release()
    if want:
        raise UserError(f"{video}: has no frame {min(want)}")
    return out
