"""Leave-one-sequence-out study of the association ablation (iou_only, context, default).

For every sequence: the matcher of each learned config is trained on the other sequences (pairs from
all their detection files; the number of rounds chosen by leaving each of them out in turn, as the
shipped matcher is trained), then the sequence is tracked and scored on the chosen detection file.
Nothing of the left-out sequence is seen in training the matcher.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from mot.cli import labelled_items
from mot.errors import UserError
from mot.io import atomic_write_text


def scene_of(name: str, same_scene: dict[str, str]) -> str:
    """The scene a sequence belongs to (``same_scene`` maps a sequence to another of the same footage)."""
    return same_scene.get(name, name)


def train_fold_matcher(cfg, features, others, train_det_files, cache, settings, model: Path, cv: bool = True):
    """The matcher of one fold, trained on ``others`` (reused when ``model`` exists: the folds'
    matchers do not depend on the detector the left-out scene is run on, nor on the track manager's
    settings, so one per (scene, config, seed) serves every row and variant)."""
    from association.matcher import Matcher
    from mot.training.matcher_cli import collect_many
    from mot.training.matcher import TrainSettings, train_matcher, train_matcher_cv

    if model.is_file():
        return Matcher.load(model, features)
    waited = settings.waited_returns if settings is not None else 0.0
    if cv:
        per_seq = [collect_many([p], cfg, train_det_files, cache, waited_returns=waited) for p in others]
        matcher, facts = train_matcher_cv(features, [x for x, _ in per_seq], [y for _, y in per_seq],
                                          settings or TrainSettings())
    else:
        x, y = collect_many(others[:-1], cfg, train_det_files, cache, waited_returns=waited)
        xv, yv = collect_many(others[-1:], cfg, train_det_files, cache)
        matcher, facts = train_matcher(features, x, y, xv, yv, settings or TrainSettings())
    facts.update(train=[p.name for p in others], waited_returns=waited)
    matcher.save(model, {"training": facts})
    return matcher


def loso(data, configs: dict[str, tuple[Path, list[str]]], dets: dict[str, str], train_det_files: list[str],
         out: Path, seqs: list[str] | None = None, cache: Path | None = None, models: Path | None = None,
         siamese: dict[str, str] | None = None, settings=None, cv: bool = True,
         same_scene: dict[str, str] | None = None, validity: bool = False, skip: set | None = None,
         refiner: dict[str, str] | None = None) -> dict:
    """Runs the study.

    Args:
        data: one data root or several (sequences found under each, see ``mot.sequence.discover``).
        configs: name -> (config file, ``--set`` overrides): the variants compared.
        dets: detector label -> detection file (relative to each sequence); a sequence without the
            file has no row for that detector.
        models: where the folds' matchers are kept and reused (default ``out/models``).
        siamese: Siamese weights per left-out sequence (trained without it); a sequence not named
            uses the configured (shipped) weights, which must then not have seen it.
        settings: the matcher's ``TrainSettings`` (default: the defaults).
        cv: the matchers stop at the round that is best leaving each training sequence out in turn
            (``train_matcher_cv``, as the shipped matcher is trained); otherwise the last training
            sequence is held out for early stopping.
        same_scene: sequence -> sequence of the same footage; the two are one scene, never one in
            training while the other is left out.
        skip: (detector label, sequence) rows not run (a file that is another detector's under
            the same name: MOT17's ``det/det.txt`` is YOLOX, 2DMOT2015's is ACF).
        validity: also train a track-validity model per left-out scene (``mot.training.validity``)
            and use it in every config whose ``tracker.validity`` is on.
            A config with ``tracker.confidence: learned`` always gets a confidence model trained
            without the left-out scene (``mot.training.confidence.fold_model``, on ``dets``' files).
        refiner: SiamRPN weights per left-out sequence (trained without its scene), used by every
            config whose refiner is on; a sequence not named uses the configured (shipped) weights.

    Returns:
        ``{detector: {sequence or "combined": {config: metrics}}}``.
    """
    from mot.config import load_config
    from mot.evaluation import combine
    from mot.pipeline import run
    from mot.sequence import discover
    from mot.training.matcher_cli import feature_params, feature_revisions

    roots = [data] if isinstance(data, (str, Path)) else list(data)
    all_paths = discover(roots)
    chosen = discover(roots, seqs) if seqs else all_paths
    same_scene = same_scene or {}
    models = models or out / "models"
    table: dict = {label: {} for label in dets}
    timing: dict = {}
    scores: dict = {label: {} for label in dets}
    for test in chosen:
        scene = scene_of(test.name, same_scene)
        others = [p for p in all_paths if scene_of(p.name, same_scene) != scene]
        for name, (cfg_path, extra) in configs.items():
            overrides = list(extra)
            cfg = load_config(cfg_path, overrides)
            if cfg.association.type == "learned":
                if test.name in (siamese or {}):
                    overrides.append(f"association.params.appearance.weights={siamese[test.name]}")
                    cfg = load_config(cfg_path, overrides)
                features = cfg.association.params["features"]
                seed = settings.seed if settings is not None else 0
                params = {k: v for k, v in feature_params(cfg.association.params).items() if k != "matcher"}
                if settings is not None and settings.waited_returns > 0:
                    params["waited_returns"] = settings.waited_returns
                if revised := feature_revisions(features):   # a feature redefined: a matcher of its own
                    params["revisions"] = revised
                digest = hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]
                model = models / f"{scene}__{digest}__s{seed}.json"
                train_fold_matcher(cfg, features, others, train_det_files, cache, settings, model, cv)
                overrides.append(f"association.params.matcher={model}")
            if cfg.refiner.enabled and test.name in (refiner or {}):
                overrides.append(f"refiner.weights={refiner[test.name]}")
            if cfg.tracker.confidence == "learned":   # never the shipped model: it saw the left-out scene
                from mot.training.confidence import fold_model as confidence_fold
                seed = settings.seed if settings is not None else 0
                overrides.append(f"tracker.confidence_model={confidence_fold(others, dets, models, scene, seed)}")
            if validity and cfg.tracker.validity:
                from mot.training.validity import fold_model
                overrides.append(f"tracker.validity_model={fold_model(others, cfg, dets, models, scene, cache)}")
            for label, det_file in dets.items():
                if not (test / det_file).is_file() or (label, test.name) in (skip or set()):
                    continue
                run_cfg = load_config(cfg_path, overrides + [f"detector.params.file={det_file}"])
                report = run(test, run_cfg, out / label / name / test.name)
                if report.failed:
                    raise UserError(report.failed[0].error)
                score = report.runs[0].score
                table[label].setdefault(test.name, {})[name] = score.metrics
                timing.setdefault(name, []).append(report.runs[0].timing)
                scores[label].setdefault(name, []).append(score)
                print(f"{label} {test.name} {name}: " + " ".join(f"{k}={score.metrics[k]:.1f}"
                                                                  for k in ("HOTA", "IDF1", "MOTA")), file=sys.stderr)
    for label in dets:
        if scores[label]:
            table[label]["combined"] = {name: combine(s) for name, s in scores[label].items()}
    atomic_write_text(out / "timing.json", json.dumps(ms_per_frame(timing), indent=1))
    return table


def ms_per_frame(timing: dict) -> dict:
    """``{config: {stage: ms per frame}}`` over all the runs of each config (wall clock, as
    ``mot.timing.StageTimer`` books it)."""
    out = {}
    for name, runs in timing.items():
        frames = sum(r["counts"].get("frames", 0) for r in runs)
        stages = {k for r in runs for k in r["seconds"]}
        out[name] = {k: round(1000 * sum(r["seconds"].get(k, 0.0) for r in runs) / max(frames, 1), 2)
                     for k in sorted(stages)}
        out[name]["frames"] = frames
    return out


def add_peers(table: dict, data, det_file: str, peers: tuple[str, ...], out: Path) -> dict:
    """Adds the peer trackers to ``table``, run on the same detections, each at the score scaling
    with its best combined HOTA over the table's sequences (tuned on the test data).

    Returns:
        peer -> the scaling it is reported at, or why it did not run.
    """
    from mot.studies.peers import PEER_LABELS, run_peers

    sweep = run_peers(data, peers, det_file, seqs=list(table), out_dir=out / "peers")
    used = {}
    for peer in peers:
        best = sweep.best_scaling(peer)
        used[peer] = best or sweep.status.get(peer) or "failed"
        if best is None:
            continue
        for seq, score in sweep.scores[peer][best].items():
            if seq in table and score is not None:
                table[seq][f"{PEER_LABELS[peer]} ({best})"] = score.metrics
    return used


def markdown(table: dict, keys=("HOTA", "IDF1", "MOTA", "IDSW", "FP", "FN")) -> str:
    """One row per (detector, left-out sequence, tracker)."""
    lines = ["| det | sequence | tracker | " + " | ".join(keys) + " |", "|" + "---|" * (3 + len(keys))]
    for label, per_seq in table.items():
        for seq, row in per_seq.items():
            for tracker, metrics in row.items():
                cells = [f"{metrics[k]:.1f}" if isinstance(metrics.get(k), float) else str(metrics.get(k, "-"))
                         for k in keys]
                lines.append(f"| {label} | {seq} | {tracker} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def nested_choice(table: dict, candidates: list[str], metric: str = "HOTA",
                  same_scene: dict[str, str] | None = None) -> dict:
    """For every (detector, sequence) row, the candidate with the best mean ``metric`` over the rows
    of the other scenes (every detector): a setting chosen without the scene it is reported on.

    Returns:
        ``{detector: {sequence: (chosen candidate, its metrics on the row)}}``.
    """
    same_scene = same_scene or {}
    rows = [(label, seq) for label, per_seq in table.items() for seq in per_seq if seq != "combined"]
    out: dict = {}
    for label, seq in rows:
        scene = scene_of(seq, same_scene)
        others = [(lb, sq) for lb, sq in rows if scene_of(sq, same_scene) != scene]

        def mean(c):
            return float(np.mean([table[lb][sq][c][metric] for lb, sq in others]))
        best = max(candidates, key=mean)
        out.setdefault(label, {})[seq] = (best, table[label][seq][best])
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="loso", description=__doc__)
    parser.add_argument("--data", required=True, nargs="+", help="data roots or sequence folders")
    parser.add_argument("--seqs", nargs="+", help="sequences to leave out in turn (default: all)")
    parser.add_argument("--configs", nargs="+", default=["configs/iou_only.yaml", "configs/default.yaml"],
                        help="config files, each optionally NAME=FILE[,KEY=VALUE...] (overrides for a variant)")
    parser.add_argument("--det", nargs="+", default=["ACF=det/det.txt", "FRCNN=det/det_frcnn.txt"],
                        metavar="LABEL=FILE", help="detection files the left-out sequence is run on, one row each")
    parser.add_argument("--train-det-files", nargs="+", default=["det/det.txt", "det/det_frcnn.txt"])
    parser.add_argument("--same-scene", nargs="*", default=["MOT17-09=ADL-Rundle-6"], metavar="SEQ=SEQ",
                        help="sequences of the same footage: one scene in every split")
    parser.add_argument("--skip", nargs="*", default=["ACF:MOT17-05", "ACF:MOT17-09"], metavar="LABEL:SEQ",
                        help="rows not run (MOT17's det/det.txt is YOLOX, not ACF)")
    parser.add_argument("--out", default=None, help="working folder (default: a temporary one)")
    parser.add_argument("--cache", help="pair cache folder")
    parser.add_argument("--models", help="folder where the folds' matchers are kept and reused (default OUT/models)")
    parser.add_argument("--validity", action="store_true",
                        help="train a track-validity model per left-out scene for configs that use one")
    parser.add_argument("--peers", nargs="*", default=[],
                        help="peer trackers (the bench extra) run on the same detections (one data root only)")
    parser.add_argument("--siamese", nargs="+", default=[], metavar="SEQ=WEIGHTS",
                        help="Siamese weights trained without SEQ, used when SEQ is left out")
    parser.add_argument("--refiner", nargs="+", default=[], metavar="SEQ=WEIGHTS",
                        help="SiamRPN weights trained without SEQ's scene, used when SEQ is left out (refiner on)")
    parser.add_argument("--parallel-trees", type=int, default=None,
                        help="the matcher's trees per boosting round (default: TrainSettings')")
    parser.add_argument("--seed", type=int, default=0, help="the matchers' training seed")
    parser.add_argument("--stopping", choices=["cv", "last"], default="cv",
                        help="cv: stop at the best round leaving each training sequence out in turn; "
                             "last: hold out the last training sequence")
    parser.add_argument("--learning-rate", type=float, default=None, help="the matchers' eta (default: TrainSettings')")
    parser.add_argument("--monotone", choices=["on", "off"], help="monotone constraints (default: TrainSettings')")
    parser.add_argument("--waited-returns", type=float, default=0.0, metavar="SECONDS",
                        help="the matchers also learn returns as if waited while hidden (train_matcher's option)")
    args = parser.parse_args(argv)
    out = Path(args.out or tempfile.mkdtemp(prefix="loso-"))
    try:
        configs = {}
        for item in args.configs:
            head, *sets = item.split(",")
            name, _, path = head.rpartition("=")
            configs[name or Path(path).stem] = (Path(path), sets)
        dets = labelled_items(args.det, "--det")
        siamese = labelled_items(args.siamese, "--siamese")
        same_scene = labelled_items(args.same_scene, "--same-scene")
        from mot.training.matcher import TrainSettings
        settings = TrainSettings(seed=args.seed)
        if args.parallel_trees is not None:
            settings.parallel_trees = args.parallel_trees
        if args.learning_rate is not None:
            settings.learning_rate = args.learning_rate
        if args.monotone is not None:
            settings.monotone = args.monotone == "on"
        if not args.waited_returns >= 0:
            raise UserError(f"--waited-returns {args.waited_returns}: must be 0 (off) or a number of seconds")
        settings.waited_returns = args.waited_returns
        table = loso(args.data, configs, dets, args.train_det_files, out, args.seqs,
                     Path(args.cache) if args.cache else None, Path(args.models) if args.models else None,
                     siamese, settings, args.stopping == "cv", same_scene, args.validity,
                     {tuple(x.split(":", 1)) for x in args.skip}, labelled_items(args.refiner, "--refiner"))
        peers = {}
        if args.peers:
            if len(args.data) != 1:
                raise UserError("--peers needs one data root")
            for label, det_file in dets.items():
                per_seq = {k: v for k, v in table[label].items() if k != "combined"}
                peers[label] = add_peers(per_seq, args.data[0], det_file, tuple(args.peers), out / label)
                table[label] = {**per_seq, "combined": table[label].get("combined", {})}
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    atomic_write_text(out / "loso.json", json.dumps({"table": table, "peers": peers}, indent=1))
    print(markdown(table))
    return 0
