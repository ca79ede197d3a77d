"""The refiner's leave-one-sequence-out study, end to end on generated sequences (tiny training)."""

import json

import pytest
import torch

from mot.errors import UserError
from mot.studies.refiner_loso import main, markdown, nested
from mot.synthetic import SyntheticSpec, generate_sequence


def test_study_trains_a_model_without_the_left_out_sequence_and_reuses_it(tmp_path):
    data, extra = tmp_path / "data", tmp_path / "extra"
    for i, name in enumerate(("SYN-A", "SYN-B", "SYN-C")):
        generate_sequence(data, SyntheticSpec(name=name, num_frames=16, num_people=3, seed=40 + i))
    generate_sequence(extra, SyntheticSpec(name="SYN-X", num_frames=16, num_people=3, seed=49))
    out = tmp_path / "out"
    args = ["--data", str(data), "--extra", str(extra / "SYN-X"), "--det-files", "det/det.txt",
            "--epochs", "1", "--steps", "2", "--out", str(out), "--seqs", "SYN-A", "--seed", "3"]
    assert main(args) == 0
    assert sorted(p.name for p in (out / "models").iterdir()) == ["SYN-A.pt"]   # a model for the left-out one
    meta = torch.load(out / "models" / "SYN-A.pt", weights_only=True)["meta"]
    summary = json.loads(meta["summary"])
    assert summary["train"] == ["SYN-C", "SYN-X"] and summary["val"] == ["SYN-B"]   # SYN-A never seen
    assert json.loads(meta["params"])["seed"] == 3
    result = json.loads((out / "refiner_loso.json").read_text())
    row = result["table"]["det/det.txt"]["SYN-A"]          # only --seqs is tracked
    assert list(result["table"]["det/det.txt"]) == ["SYN-A"]
    assert set(row) == {"off", "on"} and all(0 <= row[m]["HOTA"] <= 100 for m in row)
    stamp = (out / "models" / "SYN-A.pt").stat().st_mtime_ns
    assert main(args) == 0                                   # a second run reuses the fold models
    assert (out / "models" / "SYN-A.pt").stat().st_mtime_ns == stamp
    table = markdown(result["table"])
    assert "| det | SYN-A | " in table and " -> " in table


def test_study_combines_the_sequences_of_a_detection_file(tmp_path):
    data = tmp_path / "data"
    for i, name in enumerate(("SYN-A", "SYN-B", "SYN-C")):
        generate_sequence(data, SyntheticSpec(name=name, num_frames=12, num_people=3, seed=60 + i))
    out = tmp_path / "out"
    assert main(["--data", str(data), "--det-files", "det/det.txt", "--epochs", "1", "--steps", "1",
                 "--out", str(out), "--seqs", "SYN-A", "SYN-B"]) == 0
    rows = json.loads((out / "refiner_loso.json").read_text())["table"]["det/det.txt"]
    assert list(rows) == ["SYN-A", "SYN-B", "combined"]
    for mode in ("off", "on"):
        for key in ("FN", "FP", "IDSW", "GT"):               # counts are summed over the sequences
            assert rows["combined"][mode][key] == rows["SYN-A"][mode][key] + rows["SYN-B"][mode][key]
        c = rows["combined"][mode]
        assert abs(c["MOTA"] - 100 * (1 - (c["FN"] + c["FP"] + c["IDSW"]) / c["GT"])) < 1e-9
    assert "| det | combined | " in markdown({"det/det.txt": rows})


def test_study_reports_a_bad_sequence_in_one_line(tmp_path, capsys):
    data = tmp_path / "data"
    generate_sequence(data, SyntheticSpec(name="SYN-A", num_frames=8, num_people=2, seed=1))
    assert main(["--data", str(data), "--out", str(tmp_path / "out"), "--epochs", "1", "--steps", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: the study needs three or more sequences (one left out, one to validate, the rest "
                   "to train on), or --extra ones; got 1"]


def _row(mota_off, mota_on, errors_off=50, errors_on=40):
    # 100 ground-truth boxes: MOTA = 100 - errors
    return {"off": {"MOTA": mota_off, "FN": errors_off, "FP": 0, "IDSW": 0},
            "on": {"MOTA": mota_on, "FN": errors_on, "FP": 0, "IDSW": 0}}


def test_nested_selection_never_uses_the_row_it_reports(tmp_path, capsys):
    """Candidate 'b' gains on A and B, 'a' only on C: C's pick is made by A and B (so 'b'), A's and
    B's by the others (A: B and C average +4 for 'b' vs +1.5 for 'a')."""
    studies = {
        "a": {"det": {"A": _row(50, 50, 50, 50), "B": _row(50, 50, 50, 50), "C": _row(50, 53, 50, 47)}},
        "b": {"det": {"A": _row(50, 60, 50, 40), "B": _row(50, 58, 50, 42), "C": _row(50, 50, 50, 50)}},
    }
    table, chosen = nested(studies)
    assert chosen == {"A": "b", "B": "b", "C": "b"}
    assert table["det"]["C"]["on"]["MOTA"] == 50              # 'a' would have given 53: not chosen by C
    assert table["det"]["combined"]["on"]["FN"] == 40 + 42 + 50
    assert abs(table["det"]["combined"]["on"]["MOTA"] - (100 - 132 / 3)) < 1e-9   # GT recovered: 100 a row
    perfect = {"off": {"MOTA": 100.0, "FN": 0, "FP": 0, "IDSW": 0}, "on": {"MOTA": 100.0, "FN": 0, "FP": 0, "IDSW": 0}}
    with pytest.raises(UserError, match="cannot be combined"):
        nested({"a": {"det": {"A": perfect, "B": _row(50, 50)}}})
    counted = {m: dict(v, GT=10) for m, v in perfect.items()}
    assert nested({"a": {"det": {"A": counted, "B": dict(_row(50, 50))}}})[0]["det"]["combined"]["off"]["GT"] == 110
    studies["b"]["det"]["A"] = _row(50, 40, 50, 60)           # now 'b' loses on A: A and C pick by the rest
    table, chosen = nested(studies)
    assert chosen == {"A": "b", "B": "a", "C": "a"}
    files = []
    for name, t in studies.items():
        files.append(tmp_path / f"{name}.json")
        files[-1].write_text(json.dumps({"overrides": [f"refiner.x={name}"], "table": t}))
    assert main(["--nested"] + [str(f) for f in files]) == 0
    out = capsys.readouterr().out
    assert "A: refiner.x=b" in out and "| det | combined | - | " in out
    again = tmp_path / "a2.json"                           # a second seed of 'a': averaged with the first
    seed2 = json.loads(json.dumps(studies["a"]))
    seed2["det"]["C"]["on"]["MOTA"] = 55.0
    again.write_text(json.dumps({"overrides": ["refiner.x=a"], "table": seed2}))
    assert main(["--nested", str(files[0]), str(again), str(files[1])]) == 0
    out = capsys.readouterr().out
    assert "refiner.x=a: 2 studies (seeds) averaged" in out and "| det | C | - | 50.0 -> 54.0 |" in out
    (tmp_path / "bad.json").write_text("{}")
    assert main(["--nested", str(files[0]), str(tmp_path / "bad.json")]) == 2
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'bad.json'}: not a refiner_loso.json")
    broken = tmp_path / "broken.json"                      # the right shape but a row without its on run
    broken.write_text(json.dumps({"overrides": [], "table": {"det": {"A": {"off": _row(1, 1)["off"]}}}}))
    assert main(["--nested", str(files[0]), str(broken)]) == 2
    assert capsys.readouterr().err.strip() == (f"error: {broken}: not a refiner_loso.json (every row needs off "
                                               "and on MOTA, FN, FP, IDSW)")


def test_tracker_study_uses_the_fold_refiner_of_the_left_out_sequence(synthetic_root, tmp_path):
    """``scripts/loso.py --refiner SEQ=WEIGHTS``: a config with the refiner on runs SEQ with those
    weights (a damaged file named for SYN-A stops the run with its one-line error), and SYN-B, not
    named, with the shipped ones."""
    from pathlib import Path

    from mot.studies.loso import loso

    bad = tmp_path / "fold_SYN-A.pt"
    bad.write_bytes(b"not a weights file")
    configs = {"on": (Path(__file__).resolve().parents[1] / "configs" / "iou_only.yaml", ["refiner.enabled=true"])}
    with pytest.raises(UserError, match="fold_SYN-A.pt"):
        loso(synthetic_root, configs, {"det": "det/det.txt"}, ["det/det.txt"], tmp_path / "a", seqs=["SYN-A"],
             refiner={"SYN-A": str(bad)})
    table = loso(synthetic_root, configs, {"det": "det/det.txt"}, ["det/det.txt"], tmp_path / "b", seqs=["SYN-B"],
                 refiner={"SYN-A": str(bad)})
    assert 0 <= table["det"]["SYN-B"]["on"]["HOTA"] <= 100
