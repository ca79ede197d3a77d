"""``train_matcher``: collects pairs from annotated sequences and fits the XGBoost matcher."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

from mot.errors import UserError


STRIDES = (1, 2, 4)


def collect_many(paths, cfg, det_files, cache: Path | None, strides=STRIDES, waited_returns: float = 0.0):
    """Pairs of every sequence, detection file that exists and frame stride (cached as .npz when
    ``cache`` is set); ``waited_returns``: ``collect_pairs``'."""
    xs, ys = [], []
    feats = cfg.association.params["features"]
    # The pairs depend on the association and tracker settings, the features' definitions and, through
    # the embeddings, on the Siamese weights' content (retrained weights under the same name must not
    # reuse old pairs): all in the key.
    from mot.training.matcher import collect_pairs
    digest = pairs_digest(cfg, waited_returns)
    for path in paths:
        seen = set()   # a detection file under two names (MOT17's det.txt is det_yolox.txt) counts once
        for det_file, stride in itertools.product(det_files, strides):
            if not (path / det_file).is_file():
                continue
            content = (hashlib.sha1((path / det_file).read_bytes()).hexdigest(), stride)
            if content in seen:
                continue
            seen.add(content)
            key = f"{path.name}__{det_file.replace('/', '_')}__s{stride}__{digest}.npz"
            if cache is not None and (cache / key).is_file():
                data = np.load(cache / key)
                x, y = data["x"], data["y"]
            else:
                start = time.perf_counter()
                x, y = collect_pairs(path, cfg, det_file, stride, waited_returns)
                print(f"{path.name} {det_file} stride {stride}: {len(y)} pairs, {int(y.sum())} positive "
                      f"({time.perf_counter() - start:.1f} s)", file=sys.stderr)
                if cache is not None:
                    cache.mkdir(parents=True, exist_ok=True)
                    np.savez(cache / key, x=x, y=y)
            xs.append(x)
            ys.append(y)
    if not xs:
        return np.zeros((0, len(feats)), np.float32), np.zeros(0, bool)
    return np.concatenate(xs), np.concatenate(ys)


def pairs_digest(cfg, waited_returns: float = 0.0) -> str:
    """The cache key of a config's training pairs: the settings that shape the pairs, the Siamese
    weights' content, and the revision of every feature whose definition has changed
    (``association.features.REVISIONS``); each part absent when it has no effect, so that the caches
    of earlier pairs stay valid where nothing changed for them."""
    from mot.training.matcher import teacher_tracker

    # (the validity settings never reach the teacher, so they are not part of the key)
    tracker = {k: v for k, v in dataclasses.asdict(teacher_tracker(cfg.tracker)).items() if not k.startswith("validity")}
    key_parts = [feature_params(cfg.association.params), tracker, _weights_digest(cfg)]
    if waited_returns > 0:
        key_parts.append({"waited_returns": waited_returns})
    revised = feature_revisions(cfg.association.params.get("features", []))
    if revised:
        key_parts.append({"revisions": revised})
    return hashlib.sha1(json.dumps(key_parts, sort_keys=True).encode()).hexdigest()[:10]


def feature_revisions(features) -> dict[str, int]:
    """``{feature: revision}`` for the features among ``features`` whose definition has changed
    (``association.features.REVISIONS``): part of the keys of cached pairs and fold matchers."""
    from association.features import REVISIONS

    return {f: REVISIONS[f] for f in features if f in REVISIONS}


def feature_params(params: dict) -> dict:
    """The association params that shape the matcher's pair features, for cache keys: without the
    scene adaptation (run time only, after the matcher) and without an appearance ``hist_share``
    left at null (the share the weights were trained with), so keys made before either existed hold."""
    out = {k: v for k, v in params.items() if k != "adaptation"}
    appearance = out.get("appearance")
    if isinstance(appearance, dict) and appearance.get("hist_share", 0) is None:
        out["appearance"] = {k: v for k, v in appearance.items() if k != "hist_share"}
    return out


def _check_positives(y: np.ndarray) -> None:
    if not len(y) or not y.any():
        raise UserError("no positive training pairs found (do the sequences have gt and detections?)")


def _weights_digest(cfg) -> str:
    """sha1 of the Siamese weights the config's appearance features use ('' without appearance)."""
    from association.features import SIAMESE_FEATURES

    params = cfg.association.params
    if not any(f in SIAMESE_FEATURES for f in params.get("features", [])):
        return ""
    from association.siamese import DEFAULT_NAME
    from mot.weights import resolve
    path = resolve(params.get("appearance", {}).get("weights"), DEFAULT_NAME)
    return hashlib.sha1(path.read_bytes()).hexdigest() if path.is_file() else ""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="train_matcher", description=__doc__)
    parser.add_argument("--data", required=True, nargs="+",
                        help="annotated sequences (MOTChallenge layout): one data root or several")
    parser.add_argument("--seqs", nargs="+", help="training sequences (names or patterns; default: all)")
    parser.add_argument("--val-seqs", nargs="+", default=[],
                        help="whole sequences held out for early stopping (default: none; the rounds are "
                             "chosen by leaving each training sequence out in turn, then all are fitted)")
    parser.add_argument("--config", help="config whose association.params (features, appearance) to train for")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--det-files", nargs="+", default=["det/det.txt", "det/det_frcnn.txt"],
                        help="detection files to learn from, where a sequence has them")
    parser.add_argument("--out", required=True, help="the matcher JSON to write")
    parser.add_argument("--cache", help="folder to cache collected pairs in")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--waited-returns", type=float, default=0.0, metavar="SECONDS",
                        help="also learn from returns after at least this long unseen as if the person had "
                             "waited where last seen (0: off; docs/association.md)")
    parser.add_argument("--monotone", choices=["on", "off"], default="off",
                        help="constrain P(same) never to rise with a distance feature (association.features.MONOTONE)")
    args = parser.parse_args(argv)

    from mot.training.matcher import TrainSettings, train_matcher, train_matcher_cv
    from mot.config import load_config
    from mot.sequence import discover

    try:
        if not args.waited_returns >= 0:
            raise UserError(f"--waited-returns {args.waited_returns}: must be 0 (off) or a number of seconds")
        cfg = load_config(args.config, args.overrides)
        if cfg.association.type != "learned":
            raise UserError("config: association.type must be 'learned' to train a matcher")
        val = discover(args.data, args.val_seqs) if args.val_seqs else []
        train = [p for p in discover(args.data, args.seqs) if p not in val]
        if not train:
            raise UserError("no training sequences left after holding out --val-seqs")
        cache = Path(args.cache) if args.cache else None
        start = time.perf_counter()
        features = cfg.association.params["features"]
        settings = TrainSettings(seed=args.seed, monotone=args.monotone == "on", waited_returns=args.waited_returns)
        if val:
            x, y = collect_many(train, cfg, args.det_files, cache, waited_returns=settings.waited_returns)
            xv, yv = collect_many(val, cfg, args.det_files, cache)
            _check_positives(y)
            matcher, facts = train_matcher(features, x, y, xv, yv, settings)
        else:   # every training sequence held out in turn to choose the rounds, then all of them fitted
            per_seq = [collect_many([p], cfg, args.det_files, cache, waited_returns=settings.waited_returns) for p in train]
            _check_positives(np.concatenate([y for _, y in per_seq]))
            matcher, facts = train_matcher_cv(features, [x for x, _ in per_seq], [y for _, y in per_seq], settings)
        facts.update(train=[p.name for p in train], val=[p.name for p in val], det_files=args.det_files,
                     waited_returns=settings.waited_returns,
                     seconds=round(time.perf_counter() - start, 1))
        matcher.save(args.out, {"training": facts})
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(facts, indent=1))
    return 0
