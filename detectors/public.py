"""Public detections from a MOTChallenge ``det.txt``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detectors.base import FilterParams, filter_detections
from mot.errors import UserError
from mot.io import read_detections
from mot.sequence import Sequence
from mot.types import Detections


@dataclass
class PublicParams(FilterParams):
    file: str = "det/det.txt"   # relative to the sequence folder


class PublicDetector:
    """Serves a sequence's precomputed detections frame by frame (reads no image)."""

    Params = PublicParams
    needs_image = False

    def __init__(self, params: PublicParams, sequence: Sequence):
        if sequence.is_video:
            raise UserError(f"{sequence.path}: the 'public' detector needs a sequence folder with "
                            f"{params.file}; use an image detector for videos")
        self.params = params
        path = sequence.path / params.file
        if not path.is_file():
            raise UserError(f"{sequence.name}: detection file {params.file} not found ({path})")
        self.table = read_detections(path, sequence.info.seq_length)
        self._index = self.table.index()

    def detect(self, image: np.ndarray | None, frame: int) -> Detections:
        rows = self._index.rows(frame)
        dets = Detections(self.table.tlwh[rows], self.table.scores[rows])
        return filter_detections(dets, self.params)
