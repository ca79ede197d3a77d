"""Property tests (Hypothesis): the MOTChallenge parsers and the public tracker on random input.

Parsers: valid files read back what was written; any text at all gives a result or a
:class:`~mot.errors.UserError`, never another exception; what they return is finite and typed.
Tracker: on random detection streams, no exception, ids unique within a frame, finite boxes, only
confirmed tracks in the output, the same output for the same input. Kept small (the file runs in
well under a minute); each bug these found has a plain regression test at the end of the file.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import mot
from mot.errors import UserError
from mot.io import read_detections, read_ground_truth, read_results, read_seqinfo

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
FLOAT32_MAX = float(np.finfo(np.float32).max)

# ----------------------------------------------------------------------------- parsers

coordinate = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)
size = st.floats(0.5, 1e4, allow_nan=False, allow_infinity=False)
score = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


@st.composite
def det_rows(draw):
    n = draw(st.integers(0, 30))
    ncols = draw(st.sampled_from([7, 10]))
    rows = []
    for _ in range(n):
        row = [draw(st.integers(1, 500)), -1, draw(coordinate), draw(coordinate), draw(size), draw(size), draw(score)]
        rows.append(row + [-1] * (ncols - 7))
    return rows


def _text(rows, sep=","):
    return "".join(sep.join(repr(v) if isinstance(v, float) else str(v) for v in row) + "\n" for row in rows)


@SETTINGS
@given(rows=det_rows(), sep=st.sampled_from([",", ", ", " ", "\t"]))
def test_valid_detections_read_back(tmp_path, rows, sep):
    path = tmp_path / "det.txt"
    path.write_text(_text(rows, sep))
    table = read_detections(path)
    assert len(table.frames) == len(rows) and table.frames.dtype == np.int64
    assert table.tlwh.dtype == np.float32 and np.isfinite(table.tlwh).all() and np.isfinite(table.scores).all()
    assert (table.tlwh[:, 2:] > 0).all()
    for got, row in zip(table.tlwh, rows):
        assert np.allclose(got, np.float32([row[2] - 1, row[3] - 1, row[4], row[5]]), rtol=1e-6, atol=1e-3)


@st.composite
def gt_rows(draw):
    n = draw(st.integers(0, 30))
    mot17 = draw(st.booleans())
    keys = draw(st.lists(st.tuples(st.integers(1, 50), st.integers(0, 10_000)), min_size=n, max_size=n, unique=True))
    rows = []
    for frame, tid in keys:
        row = [frame, tid, draw(coordinate), draw(coordinate), draw(size), draw(size), draw(st.sampled_from([0, 1]))]
        row += [draw(st.integers(1, 12)), draw(st.floats(0, 1))] if mot17 else [-1, -1, -1]
        rows.append(row)
    return rows, mot17


@SETTINGS
@given(data=gt_rows())
def test_valid_ground_truth_reads_back(tmp_path, data):
    rows, mot17 = data
    path = tmp_path / "gt.txt"
    path.write_text(_text(rows))
    gt = read_ground_truth(path)
    assert len(gt.ids) == len(rows) and np.isfinite(gt.tlwh).all() and (gt.tlwh[:, 2:] > 0).all()
    assert gt.ids.tolist() == [r[1] for r in rows] and gt.consider.tolist() == [r[6] == 1 for r in rows]
    if rows:
        assert gt.protocol == ("MOT17" if mot17 else "MOT15")


@SETTINGS
@given(data=gt_rows())
def test_valid_results_read_back(tmp_path, data):
    rows, _ = data
    path = tmp_path / "res.txt"
    path.write_text(_text([r[:7] + [-1, -1, -1] for r in rows]))
    res = read_results(path)
    assert res.ids.tolist() == [r[1] for r in rows] and res.frames.tolist() == [r[0] for r in rows]
    assert np.isfinite(res.tlwh).all() and np.isfinite(res.scores).all()


# Any text: numbers of every size, words, separators, blank lines, odd characters; and tables of
# numbers at the edges (huge, tiny, fractional where whole numbers belong) that are mostly well formed.
token = st.one_of(
    st.integers(-10, 10**25).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", "-1", "x", "nan", "1_0", "0x10", "1e400"]), st.text(max_size=4))
line = st.lists(token, max_size=12).flatmap(lambda parts: st.sampled_from([",", " ", ", "]).map(lambda s: s.join(parts)))
edge = st.sampled_from(["1e20", "1e300", "-1e300", "1e-300", "2.5", "3.4e38", "3.5e38", "0", "-1"])
plain = st.one_of(st.integers(1, 9).map(str), st.floats(0.5, 99).map(lambda v: f"{v:.2f}"))
number_line = st.integers(6, 10).flatmap(lambda n: st.lists(st.one_of(plain, plain, plain, edge), min_size=n,
                                                            max_size=n)).map(",".join)
any_table = st.one_of(st.lists(line, max_size=8), st.lists(number_line, min_size=1, max_size=4)).map("\n".join)


def _reads_or_user_error(read, path):
    try:
        return read(path)
    except UserError as exc:
        assert "\n" not in str(exc)
        return None


@SETTINGS
@given(text=any_table)
def test_any_text_gives_a_table_or_a_user_error(tmp_path, text):
    path = tmp_path / "table.txt"
    path.write_text(text, errors="surrogateescape")
    for read in (read_detections, read_ground_truth, read_results):
        out = _reads_or_user_error(read, path)
        if out is not None:
            assert np.isfinite(out.tlwh).all() and (out.tlwh[:, 2:] > 0).all()
            assert (out.frames >= 1).all()
            assert np.isfinite(getattr(out, "scores", getattr(out, "visibility", out.tlwh))).all()
    # Frame numbers and ids are whole numbers on disk: what is read equals what is written.
    for read, id_col in ((read_detections, None), (read_ground_truth, 1), (read_results, 1)):
        out = _reads_or_user_error(read, path)
        if out is not None and len(out.frames):
            table = [ln.replace(",", " ").split() for ln in text.splitlines() if ln.strip()]
            assert [float(r[0]) for r in table] == out.frames.tolist()
            if id_col is not None:
                assert [float(r[id_col]) for r in table] == out.ids.tolist()


ini_value = st.one_of(st.integers(-5, 10**20).map(str), st.floats().map(repr), st.text(max_size=6),
                      st.sampled_from(["0", "-3", "nan", "inf", "1e400", "25", "\x0c"]))
ini_key = st.sampled_from(["name", "imDir", "frameRate", "seqLength", "imWidth", "imHeight", "imExt", "other"])


@st.composite
def seqinfo_text(draw):
    lines = [draw(st.sampled_from(["[Sequence]", "[Sequence]", "[Other]", "", "junk"]))]
    if draw(st.booleans()):
        lines.append(f"seqLength={draw(st.integers(0, 1000))}")
    lines += [f"{k}{draw(st.sampled_from(['=', ' = ', ':']))}{draw(ini_value)}"
              for k in draw(st.lists(ini_key, max_size=5, unique=True)) if k not in "".join(lines)]
    return "\n".join(lines)


@SETTINGS
@given(text=seqinfo_text())
def test_any_seqinfo_gives_info_or_a_user_error(tmp_path, text):
    path = tmp_path / "seqinfo.ini"
    path.write_text(text, errors="surrogateescape")
    info = _reads_or_user_error(read_seqinfo, path)
    if info is not None:
        assert info.seq_length >= 0
        assert math.isfinite(info.frame_rate) and info.frame_rate > 0   # a tracker can be built at this rate
        for v in (info.im_width, info.im_height):
            assert v is None or v > 0


# ----------------------------------------------------------------------------- tracker

@st.composite
def detection_stream(draw, width=320, height=240, max_frames=25):
    frames = []
    for _ in range(draw(st.integers(1, max_frames))):
        n = draw(st.integers(0, 6))
        boxes = []
        for _ in range(n):
            w, h = draw(st.floats(2, width / 2)), draw(st.floats(4, height / 2))
            x, y = draw(st.floats(-w / 2, width - w / 2)), draw(st.floats(-h / 2, height - h / 2))
            boxes.append([x, y, w, h])
        scores = draw(st.lists(st.floats(0, 1), min_size=n, max_size=n))
        frames.append(mot.Detections(np.array(boxes, np.float32).reshape(-1, 4), np.array(scores, np.float32)))
    # Repeat a frame's boxes now and then, so that tracks form and get confirmed.
    stream = []
    for dets in frames:
        stream += [dets] * draw(st.integers(1, 4))
    return stream


def _track(tracker, stream, images=None):
    """Every row the tracker gives (update, late after each frame, flush at the end), as
    (frame, id, x, y, w, h, score) tuples."""
    rows = []
    for k, dets in enumerate(stream):
        now = tracker.update(dets, None if images is None else images[k])
        assert (now.frames == tracker.frame).all()
        late = tracker.late()
        assert (late.frames < tracker.frame).all()
        for part in (late, now):
            rows += [(int(f), int(i), *map(float, b), float(s))
                     for f, i, b, s in zip(part.frames, part.ids, part.tlwh, part.scores)]
    late = tracker.flush()
    rows += [(int(f), int(i), *map(float, b), float(s)) for f, i, b, s in zip(late.frames, late.ids, late.tlwh,
                                                                               late.scores)]
    return rows


def _check_rows(rows, cfg):
    keys = [(r[0], r[1]) for r in rows]
    assert len(keys) == len(set(keys)), "an id twice in one frame"
    assert all(math.isfinite(v) for r in rows for v in r[2:]), "a box or score that is not finite"
    assert all(r[4] > 0 and r[5] > 0 for r in rows)
    per_id: dict[int, int] = {}
    for _, tid, *_ in rows:
        per_id[tid] = per_id.get(tid, 0) + 1
    # Only confirmed tracks come out: with their tentative history on, a track shows n_init rows at least.
    least = cfg.tracker.n_init if cfg.tracker.output_tentative_history else 1
    assert all(n >= least for n in per_id.values()), per_id


@settings(max_examples=25, deadline=None)
@given(stream=detection_stream(max_frames=15))
def test_iou_tracker_on_random_streams(stream):
    tracker = mot.Tracker(frame_rate=10, config="iou_only")
    rows = _track(tracker, stream)
    _check_rows(rows, tracker.config)
    assert _track(mot.Tracker(frame_rate=10, config="iou_only"), stream) == rows


@pytest.fixture(scope="module")
def default_tracker_factory():
    cfg = mot.load_config("default")
    return lambda: mot.Tracker(frame_rate=10, config=cfg)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stream=detection_stream(width=96, height=72, max_frames=4), seed=st.integers(0, 2**16))
def test_default_tracker_on_random_streams_and_images(default_tracker_factory, stream, seed):
    rng = np.random.default_rng(seed)
    images = [rng.integers(0, 256, (72, 96, 3), dtype=np.uint8) for _ in stream]
    tracker = default_tracker_factory()
    rows = _track(tracker, stream, images)
    _check_rows(rows, tracker.config)
    assert _track(default_tracker_factory(), stream, images) == rows


# ----------------------------------------------------------------------------- regressions
# One plain test per bug the properties above found (see docs/scale.md).


@pytest.mark.parametrize("read, text, message", [
    # A frame number past int64 wrapped around to -9223372036854775808.
    (read_detections, "1e20,-1,1,1,5,5,1\n", "frame number 1e+20 is not a positive integer within 2^53"),
    (read_results, "1e20,1,1,1,5,5,1\n", "frame number 1e+20 is not a positive integer within 2^53"),
    # Ids and classes with a fraction were cut to whole numbers (0.5 became id 0).
    (read_results, "1,0.5,1,1,5,5,1\n", "track id 0.5 is not an integer"),
    (read_ground_truth, "1,2.5,1,1,5,5,1,1,1\n", "ground-truth id 2.5 is not a non-negative integer"),
    (read_ground_truth, "1,2,1,1,5,5,1,1.5,1\n", "class 1.5 is not an integer"),
    (read_results, "1,1e20,1,1,5,5,1\n", "track id 1e+20 is not an integer within 2^53"),
    # Values past float32 became infinite boxes, scores and visibilities.
    (read_detections, "1,-1,1e300,1,5,5,1\n", "a value beyond 3.4e+38"),
    (read_results, "1,1,1,1,5,1e300\n", "a value beyond 3.4e+38"),
    (read_ground_truth, "1,2,1,1,5,5,1,1,1e300\n", "a value beyond 3.4e+38"),
    # A positive size too small for float32 became a box of width 0.
    (read_detections, "1,-1,1,1,1e-300,5,1\n", "box width and height must be positive"),
])
def test_regression_out_of_range_numbers_are_user_errors(tmp_path, read, text, message):
    path = tmp_path / "table.txt"
    path.write_text(text)
    with pytest.raises(UserError, match=message.replace("+", r"\+").replace("^", r"\^")):
        read(path)


@pytest.mark.parametrize("value", ["0", "-3", "nan", "inf", "1e400"])
def test_regression_seqinfo_frame_rate_must_be_positive(tmp_path, value):
    # frameRate=0 (or nan, inf, negative) was accepted; building the tracker then failed with a
    # ValueError traceback instead of a one-line error naming the file.
    path = tmp_path / "seqinfo.ini"
    path.write_text(f"[Sequence]\nseqLength=5\nframeRate={value}\n")
    with pytest.raises(UserError, match="frameRate=.* is not a positive number"):
        read_seqinfo(path)


def test_regression_seqinfo_image_size_must_be_positive(tmp_path):
    path = tmp_path / "seqinfo.ini"
    path.write_text("[Sequence]\nseqLength=5\nimWidth=-3\n")
    with pytest.raises(UserError, match="imWidth=-3 is not positive"):
        read_seqinfo(path)


def test_regression_seqinfo_error_quotes_the_right_line(tmp_path):
    # A form feed inside a line made the message quote the wrong line (str.splitlines splits there,
    # configparser does not).
    path = tmp_path / "seqinfo.ini"
    path.write_text("[Sequence]\nseqLength=5\nab\x0ccd\n")
    with pytest.raises(UserError, match=r"line 3: not a key=value line: 'ab\\x0ccd'"):
        read_seqinfo(path)


# Found at the edges of what mot.Detections accepts (docs/scale.md, "Property tests"): a box without
# a size is dropped by the track manager; a box far larger than the image is cropped without padding it whole.
_IMAGE = np.random.default_rng(0).integers(0, 256, (72, 96, 3), dtype=np.uint8)


def test_regression_zero_height_box_with_the_default_config():
    tracker = mot.Tracker(frame_rate=10, config="default")
    for _ in range(3):
        tracker.update(mot.Detections(np.float32([[10, 10, 5, 0]]), np.float32([1])), _IMAGE)


def test_regression_huge_box_with_the_default_config():
    tracker = mot.Tracker(frame_rate=10, config="default")
    tracker.update(mot.Detections(np.float32([[10, 10, 1e6, 1e6]]), np.float32([1])), _IMAGE)


def test_zero_height_box_starts_no_track():
    tracker = mot.Tracker(frame_rate=10, config="iou_only")
    for _ in range(4):
        tracks = tracker.update(mot.Detections(np.float32([[10, 10, 5, 0], [20, 20, 10, 30]]), np.float32([1, 1])))
    assert len(tracks) == 1 and tracks.tlwh[0, 3] > 0


def test_huge_box_patch_matches_padding_it_whole():
    """The scaled path for boxes far larger than the image gives the patch that padding would."""
    import cv2

    from association.patches import crop_resize
    image = np.random.default_rng(1).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    box = np.float32([[-40, -30, 120, 90]])                       # 3x the image each way: the scaled path
    got = crop_resize(image, box, 45, 60, pad_value=0)[0].astype(np.float32)
    padded = cv2.copyMakeBorder(image, 30, 30, 40, 40, cv2.BORDER_CONSTANT, value=0)
    want = cv2.resize(padded, (60, 45), interpolation=cv2.INTER_AREA).astype(np.float32)
    assert np.abs(got - want).mean() < 2.0
    assert (got[:10] == 0).all() and (got[-10:] == 0).all()       # the padding stays padding
