import numpy as np
import pytest

from mot.errors import UserError
from mot.io import (TrackResults, atomic_write_text, read_detections, read_ground_truth, read_results,
                    read_seqinfo, write_results)


def test_detections_are_zero_based_inside(tmp_path):
    p = tmp_path / "det.txt"
    p.write_text("1,-1,11,21,30,60,0.9,-1,-1,-1\n2,-1,1,1,5,10,-0.5\n")
    table = read_detections(p)
    assert table.frames.tolist() == [1, 2]
    assert np.allclose(table.tlwh[0], [10, 20, 30, 60])
    assert table.scores.tolist() == pytest.approx([0.9, -0.5])


def test_results_round_trip_one_based_on_disk(tmp_path):
    res = TrackResults(np.array([2, 1]), np.array([5, 3]), np.array([[0, 0, 10, 20], [4.5, 5, 6, 7]], np.float32),
                       np.array([1, 0.5], np.float32))
    p = tmp_path / "out" / "SEQ.txt"
    write_results(p, res)
    lines = p.read_text().splitlines()
    assert lines[0] == "1,3,5.50,6.00,6.00,7.00,0.5000,-1,-1,-1"     # sorted by frame, +1 on x and y
    back = read_results(p)
    assert back.frames.tolist() == [1, 2] and np.allclose(back.tlwh[1], [0, 0, 10, 20])


def test_ground_truth_forms(tmp_path):
    mot15 = tmp_path / "gt15.txt"
    mot15.write_text("1,1,10,10,5,5,1,-1,-1,-1\n1,2,10,10,5,5,0,-1,-1,-1\n")
    gt = read_ground_truth(mot15)
    assert gt.protocol == "MOT15" and gt.classes is None and gt.consider.tolist() == [True, False]
    mot17 = tmp_path / "gt17.txt"
    mot17.write_text("1,1,10,10,5,5,1,1,0.5\n1,2,10,10,5,5,0,7,1.0\n")
    gt = read_ground_truth(mot17)
    assert gt.protocol == "MOT17" and gt.classes.tolist() == [1, 7]
    assert gt.visibility.tolist() == pytest.approx([0.5, 1.0])


@pytest.mark.parametrize("text, message", [
    ("1,-1,10,10,5\n", r"det.txt:1: expected at least 7"),
    ("1,-1,10,10,5,5,0.9\n1,-1,abc,10,5,5,0.9\n", r"det.txt:2: not a number"),
    ("0,-1,10,10,5,5,0.9\n", r"frame number 0 is not a positive integer"),
    ("1.5,-1,10,10,5,5,0.9\n", r"frame number 1.5"),
    ("1,-1,10,10,-5,5,0.9\n", r"width and height must be positive"),
    ("1,-1,10,10,5,nan,0.9\n", r"NaN or infinite"),
    ("9,-1,10,10,5,5,0.9\n", r"frame 9 is beyond the sequence length 4"),
])
def test_malformed_detections_give_one_line_errors(tmp_path, text, message):
    p = tmp_path / "det.txt"
    p.write_text(text)
    with pytest.raises(UserError, match=message) as info:
        read_detections(p, seq_length=4)
    assert "\n" not in str(info.value)


def test_empty_detection_file_is_legal(tmp_path):
    p = tmp_path / "det.txt"
    p.write_text("")
    assert read_detections(p).tlwh.shape == (0, 4)


def test_seqinfo_errors(tmp_path):
    with pytest.raises(UserError, match="seqinfo.ini not found"):
        read_seqinfo(tmp_path / "seqinfo.ini")
    p = tmp_path / "seqinfo.ini"
    p.write_text("[Sequence]\nname=x\n")
    with pytest.raises(UserError, match="no seqLength"):
        read_seqinfo(p)
    p.write_text("[Sequence]\nseqLength=ten\n")
    with pytest.raises(UserError, match="not a number"):
        read_seqinfo(p)
    p.write_text("garbage without section")
    with pytest.raises(UserError, match="not a valid seqinfo.ini"):
        read_seqinfo(p)


@pytest.mark.parametrize("content, message", [
    (b"\xff\xfe\x00[Sequence]\n", r"cannot read seqinfo.ini \(UnicodeDecodeError\)"),
    (b"[Sequence]\nseqLength=4\nseqLength=5\n", r"line 3: key 'seqlength' given twice"),
    (b"[Sequence]\nseqLength=4\njust words\n", r"line 3: not a key=value line: 'just words'"),
    (b"[Other]\nseqLength=4\n", r"no \[Sequence\] section"),
])
def test_malformed_seqinfo_gives_one_line(tmp_path, content, message):
    p = tmp_path / "seqinfo.ini"
    p.write_bytes(content)
    with pytest.raises(UserError, match=message) as info:
        read_seqinfo(p)
    assert "\n" not in str(info.value)


def test_seqinfo_percent_sign_is_text(tmp_path):
    p = tmp_path / "seqinfo.ini"
    p.write_text("[Sequence]\nname=cam 50%\nseqLength=4\n")
    assert read_seqinfo(p).name == "cam 50%"


def test_one_id_twice_in_a_frame_is_rejected(tmp_path):
    # TrackEval refuses such files; scoring them anyway would give numbers it cannot confirm.
    res = tmp_path / "SEQ.txt"
    res.write_text("1,1,5,5,20,40,1,-1,-1,-1\n2,1,5,5,20,40,1,-1,-1,-1\n2,1,50,5,20,40,1,-1,-1,-1\n")
    with pytest.raises(UserError, match=r"SEQ.txt: row 3: track id 1 appears twice in frame 2"):
        read_results(res)
    gt = tmp_path / "gt.txt"
    gt.write_text("1,7,10,10,5,5,1,1,1\n1,7,30,10,5,5,1,1,1\n")
    with pytest.raises(UserError, match=r"gt.txt: row 2: ground-truth id 7 appears twice in frame 1"):
        read_ground_truth(gt)
    gt.write_text("1,7,10,10,5,5,1,1,1\n2,7,30,10,5,5,1,1,1\n1,8,30,10,5,5,1,1,1\n")
    assert len(read_ground_truth(gt).ids) == 3


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    p = tmp_path / "f.txt"
    atomic_write_text(p, "old")

    class Boom:
        def __str__(self):
            raise RuntimeError

    with pytest.raises(TypeError):
        atomic_write_text(p, Boom())
    assert p.read_text() == "old"
    assert [q.name for q in tmp_path.iterdir()] == ["f.txt"]
