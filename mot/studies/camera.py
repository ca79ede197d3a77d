"""How much of people's frame-to-frame motion camera motion compensation explains, and its cost.

For every pair of consecutive frames of each sequence, the same ground-truth person's box at t is
compared with theirs at t+1, as is and moved by the estimated camera motion (mot/camera.py, corners
masked by the frame's detections as in the tracker): mean IoU and mean centre shift in box heights.
On a moving camera the moved boxes should overlap better; on a static one nothing should change.
"""

import argparse
import sys
import time

import numpy as np


def measure(path, det_file: str) -> dict:
    from mot.camera import CameraMotion, warp_boxes
    from mot.errors import UserError
    from mot.geometry import iou_matrix_tlwh, tlwh_to_cxcywh
    from mot.io import PEDESTRIAN, read_detections, read_ground_truth
    from mot.sequence import open_sequence

    seq = open_sequence(path)
    if seq.gt_path is None:
        raise UserError(f"{seq.name}: no gt/gt.txt to measure against")
    gt = read_ground_truth(seq.gt_path)
    keep = gt.consider if gt.classes is None else gt.consider & (gt.classes == PEDESTRIAN)
    dets = read_detections(path / det_file) if (path / det_file).is_file() else None
    cam = CameraMotion()
    prev, stats, seconds = None, {"raw_iou": [], "cmc_iou": [], "raw_shift": [], "cmc_shift": []}, []
    for frame, image in seq.frames(read_images=True):
        people = dets.tlwh[dets.frames == frame] if dets is not None else None
        start = time.perf_counter()
        warp = cam.estimate(image, people)
        seconds.append(time.perf_counter() - start)
        rows = np.nonzero(keep & (gt.frames == frame))[0]
        now = {int(gt.ids[r]): gt.tlwh[r] for r in rows}
        if prev is not None:
            common = sorted(set(prev) & set(now))
            if common:
                a = np.array([prev[i] for i in common], np.float32)
                b = np.array([now[i] for i in common], np.float32)
                for tag, boxes in (("raw", a), ("cmc", warp_boxes(warp, a))):
                    stats[f"{tag}_iou"] += np.diag(iou_matrix_tlwh(boxes, b)).tolist()
                    ca, cb = tlwh_to_cxcywh(boxes), tlwh_to_cxcywh(b)
                    stats[f"{tag}_shift"] += (np.linalg.norm(ca[:, :2] - cb[:, :2], axis=1) / cb[:, 3]).tolist()
        prev = now
    out = {k: float(np.mean(v)) if v else float("nan") for k, v in stats.items()}
    out["pairs"] = len(stats["raw_iou"])
    out["ms"] = 1000 * float(np.median(seconds[1:])) if len(seconds) > 1 else float("nan")
    out["size"] = f"{image.shape[1]}x{image.shape[0]}"
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="benchmark_camera.py", description=__doc__)
    parser.add_argument("--data", nargs="+", required=True, help="folders of annotated sequences")
    parser.add_argument("--det-file", default="det/det.txt", help="detections masked out of the corners")
    args = parser.parse_args(argv)

    from mot.errors import UserError
    from mot.sequence import discover

    print("| sequence | size | pairs | IoU as is | IoU moved | shift as is (heights) | shift moved | ms/frame |")
    print("|---|---|---|---|---|---|---|---|")
    failed = 0
    try:
        paths = [p for data in args.data for p in discover(data)]
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in paths:
        try:
            r = measure(path, args.det_file)
        except UserError as exc:         # one sequence that cannot be measured; the others still are
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(f"| {path.name} | {r['size']} | {r['pairs']} | {r['raw_iou']:.3f} | {r['cmc_iou']:.3f} | "
              f"{r['raw_shift']:.3f} | {r['cmc_shift']:.3f} | {r['ms']:.1f} |", flush=True)
    return 1 if failed else 0


