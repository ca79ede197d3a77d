from pathlib import Path

import pytest

from mot.config import Config, dump_yaml, load_config
from mot.errors import UserError

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def test_default_yaml_equals_builtin_defaults():
    assert load_config(Path(__file__).resolve().parents[1] / "configs" / "default.yaml") == load_config(None)


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_shipped_config_loads(path):
    assert isinstance(load_config(path), Config)


def test_unknown_key_names_valid_ones(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("tracker:\n  n_int: 3\n")
    with pytest.raises(UserError, match=r"unknown key 'tracker.n_int' \(valid: n_init, max_age"):
        load_config(p)


def test_unknown_param_of_component():
    with pytest.raises(UserError, match=r"unknown key 'detector.params.fil'.*file"):
        load_config(None, ["detector.params.fil=x"])


def test_wrong_type():
    with pytest.raises(UserError, match=r"'tracker.n_init' must be int, got 'three'"):
        load_config(None, ["tracker.n_init=three"])


def test_unknown_component_type_lists_names():
    with pytest.raises(UserError, match=r"unknown detector type 'yolo' \(valid: .*public"):
        load_config(None, ["detector.type=yolo"])


def test_overrides_and_dump_round_trip(tmp_path):
    cfg = load_config(None, ["tracker.max_age=7", "detector.params.min_score=0.5", "association.params.min_prob=0.4",
                             "association.params.appearance.batch_size=8"])
    assert cfg.tracker.max_age == 7 and cfg.detector.params["min_score"] == 0.5
    assert cfg.association.params["appearance"]["batch_size"] == 8
    saved = tmp_path / "saved.yaml"
    saved.write_text(dump_yaml(cfg))
    assert load_config(saved) == cfg


def test_invalid_value_caught_by_validation():
    with pytest.raises(UserError, match="n_init must be >= 1"):
        load_config(None, ["tracker.n_init=0"])


def test_bad_yaml(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("tracker: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_config(p)


def test_unreadable_config_file(tmp_path):
    p = tmp_path / "bin.yaml"
    p.write_bytes(b"\xff\xfe\x00\x01tracker")
    with pytest.raises(UserError, match=r"bin.yaml: cannot read config file \(UnicodeDecodeError\)"):
        load_config(p)
