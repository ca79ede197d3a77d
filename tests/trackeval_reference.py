"""Runs TrackEval's own MotChallenge2DBox evaluator on files, as the reference our numbers must equal."""

from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path

from mot.io import read_seqinfo


def trackeval_reference(seq_dirs: list[Path], results_dir: Path, work: Path, benchmark: str) -> dict:
    """Scores ``results_dir/<SEQ>.txt`` for each sequence folder with TrackEval.

    Returns:
        ``{seq: {"HOTA", "MOTA", "IDF1"}}`` in percent, plus ``"COMBINED"``.
    """
    import trackeval

    gt_root, trk_root = work / "gt", work / "trackers"
    seq_info = {}
    for seq in seq_dirs:
        info = read_seqinfo(seq / "seqinfo.ini")
        (gt_root / seq.name / "gt").mkdir(parents=True, exist_ok=True)
        shutil.copy(seq / "gt" / "gt.txt", gt_root / seq.name / "gt" / "gt.txt")
        shutil.copy(seq / "seqinfo.ini", gt_root / seq.name / "seqinfo.ini")
        (trk_root / "ours" / "data").mkdir(parents=True, exist_ok=True)
        shutil.copy(results_dir / f"{seq.name}.txt", trk_root / "ours" / "data" / f"{seq.name}.txt")
        seq_info[seq.name] = info.seq_length
    eval_cfg = {**trackeval.Evaluator.get_default_eval_config(), "PRINT_RESULTS": False,
                "PRINT_CONFIG": False, "OUTPUT_SUMMARY": False, "OUTPUT_DETAILED": False,
                "PLOT_CURVES": False, "USE_PARALLEL": False, "DISPLAY_LESS_PROGRESS": True,
                "TIME_PROGRESS": False, "PRINT_ONLY_COMBINED": True}
    ds_cfg = {**trackeval.datasets.MotChallenge2DBox.get_default_dataset_config(),
              "GT_FOLDER": str(gt_root), "TRACKERS_FOLDER": str(trk_root), "BENCHMARK": benchmark,
              "SKIP_SPLIT_FOL": True, "SEQ_INFO": seq_info, "TRACKERS_TO_EVAL": ["ours"],
              "PRINT_CONFIG": False}
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = trackeval.Evaluator(eval_cfg)
        dataset = trackeval.datasets.MotChallenge2DBox(ds_cfg)
        metrics = [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR(), trackeval.metrics.Identity()]
        res, _ = evaluator.evaluate([dataset], metrics)
    out = {}
    for seq, r in res["MotChallenge2DBox"]["ours"].items():
        p = r["pedestrian"]
        name = "COMBINED" if seq == "COMBINED_SEQ" else seq
        out[name] = {"HOTA": 100 * float(p["HOTA"]["HOTA"].mean()), "MOTA": 100 * float(p["CLEAR"]["MOTA"]),
                     "IDF1": 100 * float(p["Identity"]["IDF1"]), **{k: p["CLEAR"][k] for k in ("CLR_FP", "CLR_FN", "IDSW", "CLR_TP")}}
    return out
