"""YAML configuration loaded into dataclasses that reject unknown keys and wrong types.

Every component section has ``type`` (a registry name) and ``params`` (checked against that
component's own ``Params`` dataclass when it is built).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mot.errors import UserError


def from_dict(cls, data: Any, where: str):
    """Builds dataclass ``cls`` from a mapping, checking keys and value types.

    Args:
        cls: a dataclass type.
        data: a mapping (None means all defaults).
        where: the dotted config path, for error messages.

    Raises:
        UserError: an unknown key (naming the valid ones), a missing required key or a wrong type.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"config: {where or 'top level'} must be a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise UserError(f"config: unknown key '{_join(where, unknown[0])}' (valid: {', '.join(fields)})")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, f in fields.items():
        key = _join(where, name)
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise UserError(f"config: missing required key '{key}'")
            continue
        kwargs[name] = _coerce(hints[name], data[name], key)
    obj = cls(**kwargs)
    check = getattr(obj, "validate", None)
    if check is not None:
        problem = check()
        if problem:
            raise UserError(f"config: {where}: {problem}" if where else f"config: {problem}")
    return obj


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _coerce(tp, value, key):
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, key)
            except UserError as exc:
                errors.append(exc)
        raise errors[0]
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise UserError(f"config: '{key}' must be a list, got {value!r}")
        inner = args[0] if args else Any
        items = [_coerce(inner, v, f"{key}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise UserError(f"config: '{key}' must be a mapping, got {value!r}")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is str:
        if isinstance(value, str):
            return value
    elif typing.get_origin(tp) is typing.Literal:
        if value in args:
            return value
        raise UserError(f"config: '{key}' must be one of {', '.join(map(str, args))}, got {value!r}")
    else:
        return value
    raise UserError(f"config: '{key}' must be {tp.__name__}, got {value!r} ({type(value).__name__})")


@dataclass
class ComponentConfig:
    """A swappable component: ``type`` names a registry entry, ``params`` are checked by that entry."""

    type: str
    params: dict = field(default_factory=dict)


@dataclass
class DetectorSection(ComponentConfig):
    type: str = "public"


@dataclass
class AssociationSection(ComponentConfig):
    type: str = "learned"


@dataclass
class TrackerConfig:
    """The track life cycle."""

    n_init: int = 3              # hits before a tentative track is confirmed
    max_age: int = 30            # frames a lost track is kept before it is removed
    motion: str = "kalman"       # kalman (SORT-style filter) | velocity (smoothed centre velocity)
    velocity_smoothing: float = 0.6  # motion "velocity": weight of the newest measurement (0: no motion)
    output_tentative_history: bool = True  # on confirmation, also output the frames it was tentative
    cascade: bool = True         # match confirmed tracks first, then tentative and lost ones
    camera_motion: str = "flow"  # none | flow: move every track by the camera's motion (mot/camera.py)
    # Confidence: P(a detection is a person), learned from its score's rank among the sequence's scores
    # so far and its place in their range (mot/confidence.py), so the same thresholds hold for any
    # detector's score scale. The *_rank thresholds below compare with it.
    confidence_memory: int = 65536  # scores kept for the ranks (a sorted sample; bounds memory)
    confidence: str = "learned"  # learned | rank: the rank alone | tracked: the rank recalibrated per
    #                              sequence by which detections the confirmed tracks cover
    #                              (TrackedPrecision) | range: the higher of the rank and the score's place
    #                              between the lowest and highest seen (docs/track-management.md)
    confidence_model: str = "confidence.json"   # confidence "learned": shipped in mot/weights, or a path
    row_fit: bool = True         # confidence "learned": how well a box's height fits its image row counts
    #                              (false: the scene's people do not stand on one ground plane in view,
    #                              e.g. a camera looking down, several floors)
    row_fit_rank: float = 0.5    # confidence "learned": boxes ranked at least this teach the height-for-row fit
    row_fit_min_boxes: int = 20  # ... which is used once this many boxes taught it
    confidence_prior: float = 50.0   # confidence "tracked": pseudo-detections pulling each bin to its rank
    support_iou: float = 0.5     # confidence "tracked": a detection is supported if it overlaps a confirmed track this much
    min_rank: float = 0.2        # detections ranked below this are dropped before anything else
    high_rank: float = 0.4       # confident detections (confidence >= this) are linked first by the association;
    #                              the others can only extend confirmed tracks, in the second stage
    second_stage: str = "iou"    # second stage: iou (predicted box overlap, ByteTrack) | association | none
    second_min_iou: float = 0.5  # second stage "iou": pairs overlapping less never link
    birth_rank: float = 0.6      # new tracks start only from unmatched confident detections this confident
    birth_evidence: float = 0.0  # ... and are confirmed once their detections' ranks sum to this (and n_init hits)
    iou_first: bool = False      # before the association, link pairs whose IoU is unambiguous
    iou_first_min_iou: float = 0.5   # ... IoU(predicted track box, detection) at least this
    iou_first_max_other: float = 0.1  # ... while neither overlaps any other candidate more than this
    validity: bool = False       # a learned model decides which tracks are real (mot/validity.py)
    validity_model: str = "validity.json"  # shipped in mot/weights, or a path
    validity_min_prob: float = 0.5  # tracks less likely real than this are never output
    validity_frames: int = 10    # the decision is taken this many frames after a track's birth (output delay)

    def validate(self):
        for name in ("min_rank", "high_rank", "birth_rank", "row_fit_rank", "second_min_iou", "iou_first_min_iou",
                     "iou_first_max_other", "validity_min_prob"):
            if not 0 <= getattr(self, name) <= 1:
                return f"{name} must be in [0, 1]"
        if self.second_stage not in ("iou", "association", "none"):
            return f"second_stage must be iou, association or none, got {self.second_stage!r}"
        if self.iou_first_max_other >= self.iou_first_min_iou:
            return "iou_first_max_other must be below iou_first_min_iou"
        if self.validity_frames < 0:
            return "validity_frames must be >= 0"
        if self.confidence not in ("rank", "tracked", "range", "learned"):
            return f"confidence must be rank, tracked, range or learned, got {self.confidence!r}"
        if self.confidence_prior <= 0:
            return "confidence_prior must be > 0"
        if not 0 < self.support_iou <= 1:
            return "support_iou must be in (0, 1]"
        if self.birth_evidence < 0:
            return "birth_evidence must be >= 0"
        if self.birth_evidence > self.birth_rank and max(self.high_rank, self.min_rank) <= 0:
            return "birth_evidence needs high_rank or min_rank above 0 (else a track may never be confirmed)"
        if self.confidence_memory < 2:
            return "confidence_memory must be >= 2"
        if self.row_fit_min_boxes < 2:
            return "row_fit_min_boxes must be >= 2"
        if self.n_init < 1:
            return "n_init must be >= 1"
        if self.max_age < 0:
            return "max_age must be >= 0"
        if self.motion not in ("kalman", "velocity"):
            return f"motion must be kalman or velocity, got {self.motion!r}"
        if not 0 <= self.velocity_smoothing <= 1:
            return "velocity_smoothing must be in [0, 1]"
        if self.camera_motion not in ("none", "flow"):
            return f"camera_motion must be none or flow, got {self.camera_motion!r}"
        return None

    def hits_to_confirm(self) -> int:
        """The most hits a tentative track can need: ``n_init``, or more when low-ranked detections
        must add up to ``birth_evidence`` (each later hit ranks at least ``max(high_rank, min_rank)``)."""
        lowest = max(self.high_rank, self.min_rank)
        extra = self.birth_evidence - self.birth_rank
        return max(self.n_init, 1 + (math.ceil(extra / lowest - 1e-9) if extra > 0 else 0))


@dataclass
class RefinerConfig:
    """The SiamRPN refiner (mot/refiner.py): each use is switched on its own."""

    enabled: bool = True         # false: no network is loaded and the tracker runs as without it
    weights: str = "siamrpn.pt"  # a shipped name in mot/weights, or a path
    fuse: str = "none"           # matched tracks: none (detection box) | replace | average
    fuse_weight: float = 0.5     # fuse "average": weight of the refined box
    fuse_min_score: float = 0.8  # refined boxes less confident than this are never fused
    carry: bool = True           # an unmatched confirmed track continues on the refined box
    carry_min_score: float = 0.8  # ... while the refiner's score is at least this
    carry_max_frames: int = 5    # ... for at most this many frames in a row
    carry_max_overlap: float = 0.5  # ... unless the box overlaps a detection of the frame this much (IoU)
    carry_min_score_rank: float = 0.5  # ... if its median detection score ranks this high among all scores seen
    carry_output: str = "on_rematch"  # carried boxes output: on_rematch (once re-found) | immediate
    carry_correction: str = "drift"  # on_rematch: held boxes corrected once re-found: none | drift | interpolate
    carry_min_agreement: float = 0.5  # on_rematch: held boxes kept only if the refiner's box at the re-found frame
    #                                   overlaps the detection that re-found the track this much (IoU; 0: always)
    template_max_overlap: float = 1.0  # keep the old template while the box overlaps another detection more (IoU)
    features: bool = True        # offer refined_tlwh / refined_score to the matcher's features
    max_search_gap: int = 1      # search tracks last boxed at most this many frames ago
    penalty_k: float = 0.1       # SiamRPN penalty on scale and aspect change
    window_influence: float = 0.4  # weight of the cosine window against the penalised score
    size_lr: float = 0.4         # how fast the box size follows the refiner (times penalty x score)
    batch_size: int = 64         # tracks per forward pass (more are split)
    # SiamMask (docs/masks.md): a mask per track and frame from the refiner's search, written as
    # <SEQ>.masks.txt (MOTS text, COCO RLE; needs pycocotools) and shaded by --save-video.
    mask: bool = False           # needs enabled: true
    mask_weights: str = "siammask.pt"  # the mask head: a shipped name in mot/weights, or a path
    mask_threshold: float = 0.5  # mask pixels are those with probability at least this
    mask_min_iou: float = 0.5    # a track's output box overlapping its search's box less (IoU) is searched
    #                              again around the output box for its mask

    def validate(self):
        if self.mask and not self.enabled:
            return "mask: true needs the refiner on (set refiner.enabled: true as well)"
        if self.carry_output not in ("on_rematch", "immediate"):
            return f"carry_output must be on_rematch or immediate, got {self.carry_output!r}"
        if self.carry_correction not in ("none", "drift", "interpolate"):
            return f"carry_correction must be none, drift or interpolate, got {self.carry_correction!r}"
        if self.fuse not in ("none", "replace", "average"):
            return f"fuse must be none, replace or average, got {self.fuse!r}"
        for name in ("fuse_weight", "fuse_min_score", "carry_min_score", "carry_max_overlap", "carry_min_score_rank",
                     "carry_min_agreement", "template_max_overlap", "window_influence", "size_lr",
                     "mask_threshold", "mask_min_iou"):
            if not 0 <= getattr(self, name) <= 1:
                return f"{name} must be in [0, 1]"
        if self.carry_max_frames < 0 or self.max_search_gap < 1 or self.batch_size < 1:
            return "carry_max_frames must be >= 0, max_search_gap and batch_size >= 1"
        if self.penalty_k < 0:
            return "penalty_k must be >= 0"
        return None


@dataclass
class RuntimeConfig:
    """Where and how to run."""

    device: str = "auto"         # auto | cpu | cuda
    prefetch: int = 4            # frames read ahead by the reader thread
    torch_threads: int = 1       # CPU threads per process (PyTorch and OpenCV); 0: the cores split across workers

    def validate(self):
        if self.torch_threads < 0:
            return "runtime.torch_threads must be >= 0"
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            return f"runtime.device must be auto, cpu or cuda[:N], got {self.device!r}"
        return None


@dataclass
class Config:
    """The whole configuration of a run."""

    detector: DetectorSection = field(default_factory=DetectorSection)
    association: AssociationSection = field(default_factory=AssociationSection)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    refiner: RefinerConfig = field(default_factory=RefinerConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parses ``a.b.c=value`` (the value read as YAML: numbers, booleans, null, lists)."""
    if "=" not in text:
        raise UserError(f"--set {text!r}: expected key.path=value")
    key, raw = text.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise UserError(f"--set {text!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return parts, value


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Applies ``--set`` overrides to a raw config mapping (unknown keys are caught by validation)."""
    for text in overrides or []:
        parts, value = parse_override(text)
        node = raw
        for p in parts[:-1]:
            if node.get(p) is None:
                node[p] = {}
            if not isinstance(node[p], dict):
                raise UserError(f"--set {text!r}: '{p}' is not a section")
            node = node[p]
        node[parts[-1]] = value
    return raw


def shipped_configs() -> list[str]:
    """The names of the configs shipped with the package (``default``, ``iou_only`` ...)."""
    from importlib import resources
    return sorted(p.name[:-5] for p in resources.files("mot.configs").iterdir() if p.name.endswith(".yaml"))


def config_path(name: str | Path) -> Path:
    """The file a ``--config`` value names: an existing path, or a shipped config's name
    (``iou_only``, ``iou_only.yaml`` or ``configs/iou_only.yaml``, from any folder).

    Raises:
        UserError: neither, naming the shipped configs.
    """
    path = Path(name)
    if path.is_file():
        return path
    stem = path.name[:-5] if path.name.endswith(".yaml") else path.name
    if path.parent in (Path("."), Path("configs")) and stem in shipped_configs():
        from importlib import resources
        return Path(str(resources.files("mot.configs").joinpath(f"{stem}.yaml")))
    raise UserError(f"{name}: config file not found (shipped configs: {', '.join(shipped_configs())})")


def load_raw(path: str | Path | None) -> dict:
    """Reads a YAML config file (a path or a shipped name) into a mapping (``yaml.safe_load``)."""
    if path is None:
        return {}
    path = config_path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read config file ({type(exc).__name__})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise UserError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise UserError(f"{path}: a config file must be a mapping at the top level")
    return raw


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Loads and validates a configuration, including every component's params."""
    raw = apply_overrides(load_raw(path), overrides or [])
    cfg = from_dict(Config, raw, "")
    from mot.registry import validate_components
    validate_components(cfg)
    return cfg


def to_dict(cfg) -> dict:
    """The resolved configuration as plain data (for saving next to results)."""
    return dataclasses.asdict(cfg)


def dump_yaml(cfg) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)
