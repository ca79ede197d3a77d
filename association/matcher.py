"""The XGBoost matcher: P(same person) for every (track, detection) pair of a frame in one call.

Saved as XGBoost's own JSON model (no pickle), with our metadata (feature names and order, format
version) stored as a model attribute and checked on load.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mot.errors import UserError
from mot.io import atomic_write_text

FORMAT_VERSION = 1
_META_KEY = "siamese_mot_meta"


class Matcher:
    """A trained pair classifier.

    Attributes:
        features: the feature names, in the column order the model was trained on.
    """

    def __init__(self, booster, features: list[str]):
        self.booster = booster
        # A frame's pairs are a few thousand rows at most: one thread predicts them fastest, and
        # XGBoost's default (all cores) stalls on a busy machine (36 ms instead of 0.7 for 9 pairs).
        self.booster.set_param({"nthread": 1})
        self.features = list(features)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """P(same) for every pair.

        Args:
            features: (T, D, F) float32, columns in ``self.features`` order (NaN = missing).

        Returns:
            (T, D) float32 probabilities.
        """
        t, d, f = features.shape
        if t == 0 or d == 0:
            return np.zeros((t, d), np.float32)
        if f != len(self.features):
            raise ValueError(f"matcher expects {len(self.features)} features, got {f}")
        p = self.booster.inplace_predict(features.reshape(t * d, f))
        return np.asarray(p, np.float32).reshape(t, d)

    def save(self, path: str | Path, extra: dict | None = None) -> None:
        """Writes the JSON model with metadata (atomically)."""
        save_booster(self.booster, path, _META_KEY,
                     {"version": FORMAT_VERSION, "features": self.features, **(extra or {})})

    @classmethod
    def load(cls, path: str | Path, expected_features: list[str] | None = None) -> "Matcher":
        """Loads a model and checks its metadata.

        Raises:
            UserError: missing or corrupt file, a foreign model, another format version, or a feature
                list different from ``expected_features``.
        """
        path = Path(path)
        booster, meta = load_booster(path, _META_KEY, "matcher model")
        if meta.get("version") != FORMAT_VERSION:
            raise UserError(f"{path}: matcher format version {meta.get('version')}, expected {FORMAT_VERSION}")
        if expected_features is not None and list(expected_features) != meta["features"]:
            raise UserError(f"{path}: matcher was trained on features {meta['features']}, "
                            f"config asks for {list(expected_features)}")
        return cls(booster, meta["features"])


def save_booster(booster, path: str | Path, meta_key: str, meta: dict) -> None:
    """Writes an XGBoost model as JSON (atomically) with ``meta`` stored as the attribute ``meta_key``."""
    booster.set_attr(**{meta_key: json.dumps(meta)})
    atomic_write_text(path, bytes(booster.save_raw(raw_format="json")).decode())


def load_booster(path: Path, meta_key: str, what: str):
    """Reads an XGBoost JSON model and its metadata attribute.

    Returns:
        ``(booster, meta dict)``.

    Raises:
        UserError: a missing or corrupt file, or one without (readable) metadata, in one line naming ``what``.
    """
    import xgboost as xgb

    if not path.is_file():
        raise UserError(f"{path}: {what} not found")
    try:
        booster = xgb.Booster(model_file=str(path))
    except xgb.core.XGBoostError:
        raise UserError(f"{path}: not a readable XGBoost JSON model (corrupt?)") from None
    raw = booster.attr(meta_key)
    if raw is None:
        raise UserError(f"{path}: not a siamese-mot {what} (no metadata)")
    try:
        return booster, json.loads(raw)
    except json.JSONDecodeError:
        raise UserError(f"{path}: {what} metadata is not JSON") from None


class BoosterModel:
    """A small XGBoost classifier over a fixed list of named inputs, saved as XGBoost JSON with its
    metadata (format version, input names); subclasses name the kind, the inputs and the key.

    Attributes:
        features: the input names, in the column order the model was trained on.
    """

    KIND = "model"
    META_KEY = ""
    VERSION = 1
    FEATURES: tuple = ()

    def __init__(self, booster, features=None, meta: dict | None = None):
        self.booster = booster
        self.booster.set_param({"nthread": 1})
        self.features = list(self.FEATURES if features is None else features)
        self.meta = meta or {}

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(N,) float32 probabilities for (N, F) float32 input rows."""
        x = np.asarray(x, np.float32).reshape(-1, len(self.features))
        if not len(x):
            return np.zeros(0, np.float32)
        return np.asarray(self.booster.inplace_predict(x), np.float32).reshape(-1)

    def save(self, path: str | Path, extra: dict | None = None) -> None:
        """Writes the JSON model with its metadata (atomically)."""
        save_booster(self.booster, path, self.META_KEY, {"version": self.VERSION, "features": self.features, **(extra or {})})

    @classmethod
    def load(cls, path: str | Path):
        """Loads a model and checks its metadata against this code's ``FEATURES``.

        Raises:
            UserError: missing or corrupt file, a foreign model, another format version or another
                feature list (one line each).
        """
        path = Path(path)
        booster, meta = load_booster(path, cls.META_KEY, cls.KIND)
        if meta.get("version") != cls.VERSION:
            raise UserError(f"{path}: {cls.KIND} format version {meta.get('version')}, expected {cls.VERSION}")
        if meta.get("features") != list(cls.FEATURES):
            raise UserError(f"{path}: {cls.KIND} was trained on features {meta.get('features')}, "
                            f"this version computes {list(cls.FEATURES)}")
        return cls(booster, meta["features"], meta)
