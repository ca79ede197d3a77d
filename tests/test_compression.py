"""Compressed copies of sequences (mot.studies.compression) and the benchmark across them.

Most tests need no ffmpeg; the one that encodes skips cleanly when no ffmpeg with libx264 is found.
"""

from __future__ import annotations

import configparser
import math
import sys

import numpy as np
import pytest

from mot.errors import UserError
from mot.io import read_seqinfo
from mot.studies import compression
from mot.studies.compression import (
    CompressionParams,
    compress_sequence,
    find_ffmpeg,
    psnr,
    psnr_from_mse,
)
from mot.studies.compression_appearance import (
    SHIPPED,
    drift,
    format_generations,
    score_generations,
    siamese_models,
)


def test_psnr_hand_computed():
    a = np.zeros((4, 6, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 12  # one value off by 12: MSE = 144 / 72 = 2
    assert psnr(a, b) == pytest.approx(10 * math.log10(255 ** 2 / 2))
    assert psnr(a, a) == math.inf
    assert psnr_from_mse(1.0) == pytest.approx(48.1308, abs=1e-4)
    assert psnr(np.zeros((2, 2)), np.full((2, 2), 0.5), peak=1.0) == pytest.approx(10 * math.log10(4))


def test_psnr_rejects_different_shapes():
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)))


@pytest.fixture
def no_ffmpeg(monkeypatch, tmp_path):
    """No ffmpeg anywhere: empty PATH, no IMAGEIO_FFMPEG_EXE, imageio_ffmpeg not importable."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("IMAGEIO_FFMPEG_EXE", raising=False)
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # import raises ImportError


def test_missing_ffmpeg_is_one_clear_line(no_ffmpeg):
    with pytest.raises(UserError, match="ffmpeg not found") as err:
        find_ffmpeg()
    assert "\n" not in str(err.value) and "imageio-ffmpeg" in str(err.value)


def test_named_ffmpeg_must_exist(tmp_path):
    with pytest.raises(UserError, match="ffmpeg not found"):
        find_ffmpeg(str(tmp_path / "no-such-ffmpeg"))


def test_script_without_ffmpeg_exits_with_one_line_and_writes_nothing(no_ffmpeg, synthetic_root, tmp_path, capsys):
    from scripts.compress_sequence import main

    out = tmp_path / "copies" / "SYN-A"
    assert main(["--seq", str(synthetic_root / "SYN-A"), "--out", str(out), "--crf", "30"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ffmpeg not found") and "\n" not in err
    assert not out.exists()
    assert not (out.parent.exists() and any(out.parent.iterdir()))  # no temporary folder left behind


def test_params_are_checked():
    with pytest.raises(UserError, match="crf"):
        CompressionParams(crf=60)
    with pytest.raises(UserError, match="preset"):
        CompressionParams(preset="quick")
    with pytest.raises(UserError, match="png_compression"):
        CompressionParams(png_compression=10)
    with pytest.raises(UserError, match="threads"):
        CompressionParams(threads=-1)


def test_output_inside_source_or_existing_is_refused(synthetic_root, seq_copy, tmp_path):
    with pytest.raises(UserError, match="inside its source"):
        compress_sequence(seq_copy, seq_copy / "copy")
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("x")
    with pytest.raises(UserError, match="already exists"):
        compress_sequence(synthetic_root / "SYN-A", existing)
    assert (existing / "keep.txt").read_text() == "x"


def test_seqinfo_points_at_png_and_keeps_the_rest(seq_copy):
    text = compression._seqinfo_text(seq_copy)
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read_string(text)
    before = configparser.ConfigParser(interpolation=None)
    before.optionxform = str
    before.read_string((seq_copy / "seqinfo.ini").read_text())
    assert parser["Sequence"]["imExt"] == ".png" and parser["Sequence"]["imDir"] == "img1"
    for key, value in before["Sequence"].items():
        if key not in ("imExt", "imDir"):
            assert parser["Sequence"][key] == value


def _ffmpeg_or_skip() -> str:
    try:
        exe = find_ffmpeg()
        compression.ffmpeg_version(exe)
    except UserError as exc:
        pytest.skip(f"no usable ffmpeg: {exc}")
    return exe


def test_compressed_copy_is_a_sequence_with_its_psnr(synthetic_root, tmp_path):
    _ffmpeg_or_skip()
    import cv2

    src = synthetic_root / "SYN-B"
    out = tmp_path / "crf35" / "SYN-B"
    result = compress_sequence(src, out, CompressionParams(crf=35, preset="ultrafast"))
    info, before = read_seqinfo(out / "seqinfo.ini"), read_seqinfo(src / "seqinfo.ini")
    assert info.im_ext == ".png" and info.seq_length == before.seq_length == result.frames
    assert (out / "gt" / "gt.txt").read_text() == (src / "gt" / "gt.txt").read_text()
    assert (out / "gt").is_symlink() and (out / "det" / "det.txt").is_file()
    # The PSNR reported is the PSNR of the frames written (lossless PNG) against the source.
    mse = np.mean([np.mean((cv2.imread(str(out / "img1" / f"{f:06d}.png")).astype(float)
                            - cv2.imread(str(src / "img1" / f"{f:06d}{before.im_ext}")).astype(float)) ** 2)
                   for f in range(1, info.seq_length + 1)])
    assert result.psnr_db == pytest.approx(psnr_from_mse(mse), abs=1e-6)
    assert math.isfinite(result.psnr_db) and result.kbit_per_s > 0
    # A lower CRF keeps more: closer to the source.
    finer = compress_sequence(src, tmp_path / "crf10" / "SYN-B", CompressionParams(crf=10, preset="ultrafast",
                                                                                    link=False))
    assert finer.psnr_db > result.psnr_db
    assert not (tmp_path / "crf10" / "SYN-B" / "gt").is_symlink()


def test_drift_is_in_units_of_one_frame_of_motion():
    # Two people over three frames; the same person moves by 1 per frame in the reference.
    boxes = {"frames": np.array([1, 1, 2, 2, 3, 3]), "ids": np.array([1, 2, 1, 2, 1, 2])}
    ref = np.array([[0, 0], [10, 0], [1, 0], [11, 0], [2, 0], [12, 0]], np.float32)
    assert drift(ref, ref, boxes) == 0.0
    assert drift(ref, ref + np.float32([0, 0.5]), boxes) == pytest.approx(0.5)


def test_generations_are_scored_against_the_first(synthetic_root, seq_copy):
    def colour_mean(image, tlwh, prev=None):
        rows = []
        for x, y, w, h in tlwh.astype(int):
            patch = image[max(y, 0):max(y + h, 1), max(x, 0):max(x + w, 1)]
            rows.append(patch.reshape(-1, 3).mean(0) if patch.size else np.zeros(3))
        return np.asarray(rows, np.float32).reshape(-1, 3)

    result = score_generations({"ref": synthetic_root / "SYN-A", "same": seq_copy}, {"colour": colour_mean})
    assert result["drift"]["same"]["colour"] == 0.0
    assert result["scores"]["same"] == result["scores"]["ref"]
    table = format_generations(result)
    assert "| same - ref |" in table and "+0.00" in table


def test_generations_must_share_ground_truth(synthetic_root):
    with pytest.raises(UserError, match="ground truth differs"):
        score_generations({"a": synthetic_root / "SYN-A", "b": synthetic_root / "SYN-B"},
                          {"zero": lambda image, tlwh, prev=None: np.zeros((len(tlwh), 2), np.float32)})


def test_model_items_name_the_shipped_file_by_a_word():
    """--model: LABEL=WEIGHTS, and the word shipped (or shipped=, as older commands write it) for
    mot/weights/siamese.pt; anything else is a one-line error."""
    assert siamese_models(["shipped", "fold=runs/a.pt"]) == {SHIPPED: None, "fold": "runs/a.pt"}
    assert siamese_models(["shipped="]) == {SHIPPED: None}
    with pytest.raises(UserError, match="--model 'runs/a.pt': expected LABEL=VALUE"):
        siamese_models(["runs/a.pt"])
    with pytest.raises(UserError, match="given twice"):
        siamese_models(["shipped", "shipped="])
