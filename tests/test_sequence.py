import shutil

import cv2
import numpy as np
import pytest

from mot.errors import UserError
from mot.sequence import discover, open_sequence


def test_discover_forms(synthetic_root, tmp_path):
    assert [p.name for p in discover(synthetic_root)] == ["SYN-A", "SYN-B"]
    assert [p.name for p in discover(synthetic_root / "SYN-B")] == ["SYN-B"]
    assert [p.name for p in discover(synthetic_root, ["SYN-B"])] == ["SYN-B"]
    assert [p.name for p in discover(synthetic_root, ["SYN-*"])] == ["SYN-A", "SYN-B"]
    mot17 = tmp_path / "MOT17"
    (mot17 / "train").mkdir(parents=True)
    (mot17 / "test").mkdir()
    shutil.copytree(synthetic_root / "SYN-A", mot17 / "train" / "SYN-A")
    shutil.copytree(synthetic_root / "SYN-B", mot17 / "test" / "SYN-B")
    assert sorted(p.name for p in discover(mot17)) == ["SYN-A", "SYN-B"]
    with pytest.raises(UserError, match="no sequence matches --seqs NOPE"):
        discover(synthetic_root, ["NOPE"])
    with pytest.raises(UserError, match="data path not found"):
        discover(tmp_path / "missing")
    # several roots: pooled in the roots' order, --seqs over the pool (a root without a match is fine)
    both = [mot17, synthetic_root / "SYN-B"]
    assert discover(both) == [mot17 / "test" / "SYN-B", mot17 / "train" / "SYN-A", synthetic_root / "SYN-B"]
    assert discover(both, ["SYN-A"]) == [mot17 / "train" / "SYN-A"]
    with pytest.raises(UserError, match="no sequence matches --seqs NOPE"):
        discover(both, ["NOPE"])
    with pytest.raises(UserError, match="data path not found"):
        discover([synthetic_root, tmp_path / "missing"])


def test_frames_stream_in_order(synthetic_root):
    seq = open_sequence(synthetic_root / "SYN-B")
    frames = [(f, img.shape) for f, img in seq.frames(prefetch=2)]
    assert [f for f, _ in frames] == list(range(1, 31))
    assert frames[0][1] == (360, 640, 3)
    assert [f for f, img in seq.frames(read_images=False)] == list(range(1, 31))


def test_missing_and_corrupt_frames(seq_copy):
    seq = open_sequence(seq_copy)
    (seq_copy / "img1" / "000007.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(UserError, match="000007.jpg: cannot read image"):
        list(seq.frames())
    (seq_copy / "img1" / "000005.jpg").unlink()
    with pytest.raises(UserError, match="frame 5 of 40 is missing"):
        seq.check_frames()


def test_video_as_sequence(synthetic_root, tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(6):
        writer.write(np.full((48, 64, 3), i * 20, np.uint8))
    writer.release()
    seq = open_sequence(discover(path)[0])
    assert seq.is_video and seq.gt_path is None and seq.info.im_width == 64
    assert [f for f, _ in seq.frames()] == list(range(1, 7))


@pytest.mark.parametrize("content", [b"", b"\x00junk" * 500])
def test_corrupt_video_is_a_user_error(tmp_path, content):
    path = tmp_path / "clip.mp4"
    path.write_bytes(content)
    with pytest.raises(UserError, match="clip.mp4: cannot open video"):
        open_sequence(discover(path)[0])
