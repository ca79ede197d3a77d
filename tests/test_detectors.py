"""Contract tests: every registered detector, built from its default params on a generated sequence."""

import numpy as np
import pytest

from detectors import DETECTORS
from mot.config import DetectorSection
from mot.errors import UserError
from mot.sequence import open_sequence
from mot.types import Detections


@pytest.mark.parametrize("name", DETECTORS.names())
def test_detector_contract(name, synthetic_root):
    seq = open_sequence(synthetic_root / "SYN-A")
    det = DETECTORS.build(DetectorSection(name), sequence=seq)
    image = np.zeros((360, 640, 3), np.uint8)
    total = 0
    for frame in (1, 10, 40):
        out = det.detect(image, frame)
        assert isinstance(out, Detections)
        assert out.tlwh.dtype == np.float32 and out.tlwh.shape[1] == 4
        assert out.scores.shape == (len(out),)
        assert np.all(out.tlwh[:, 2:] > 0)
        total += len(out)
    assert total > 0


def test_public_missing_file_is_clear(synthetic_root):
    seq = open_sequence(synthetic_root / "SYN-A")
    with pytest.raises(UserError, match="detection file det/nope.txt not found"):
        DETECTORS.build(DetectorSection("public", {"file": "det/nope.txt"}), sequence=seq)


def test_public_score_threshold_and_nms(synthetic_root):
    seq = open_sequence(synthetic_root / "SYN-A")
    all_dets = DETECTORS.build(DetectorSection("public"), sequence=seq)
    strict = DETECTORS.build(DetectorSection("public", {"min_score": 0.6, "nms_iou": 0.3}), sequence=seq)
    n_all = sum(len(all_dets.detect(None, f)) for f in range(1, 41))
    n_strict = sum(len(strict.detect(None, f)) for f in range(1, 41))
    assert 0 < n_strict < n_all
    assert all((strict.detect(None, f).scores >= 0.6).all() for f in range(1, 41))


def test_oracle_noise_is_seeded_and_drops(synthetic_root):
    seq = open_sequence(synthetic_root / "SYN-A")
    clean = DETECTORS.build(DetectorSection("gt"), sequence=seq)
    noisy = DETECTORS.build(DetectorSection("gt", {"jitter": 0.1, "drop_rate": 0.5, "seed": 3}), sequence=seq)
    again = DETECTORS.build(DetectorSection("gt", {"jitter": 0.1, "drop_rate": 0.5, "seed": 3}), sequence=seq)
    n_clean = sum(len(clean.detect(None, f)) for f in range(1, 41))
    n_noisy = sum(len(noisy.detect(None, f)) for f in range(1, 41))
    assert n_noisy < n_clean
    assert np.array_equal(noisy.detect(None, 20).tlwh, again.detect(None, 20).tlwh)
