from pathlib import Path

import pytest
import yaml

from ide.config import Config, dump_config, from_dict, load_config
from ide.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["cufs.yaml", "cufsf.yaml", "cufs_cpu.yaml", "demo.yaml"])
def test_shipped_configs_load(name):
    path = ROOT / "configs" / name
    if not path.exists():
        pytest.skip(f"{name} not written yet")
    cfg = load_config(path, ["data.root=synthetic"])
    assert isinstance(cfg, Config)


def test_defaults_and_override_types():
    cfg = load_config(
        None, ["train.lr=3e-4", "train.betas=[0.5, 0.9]", "stage1.k=7", "loss.perceptual.weights=none"]
    )
    assert cfg.train.lr == 3e-4 and cfg.train.betas == (0.5, 0.9)
    assert cfg.stage1.k == 7 and cfg.loss.perceptual.weights == "none"
    assert cfg.train.milestones == Config().train.milestones  # untouched defaults stay
    with pytest.raises(AttributeError):
        cfg.train.lr = 1.0  # frozen


def test_int_accepted_for_float_but_not_reverse():
    assert from_dict({"train": {"lr": 1}}).train.lr == 1.0
    with pytest.raises(UserError, match="train.iterations"):
        from_dict({"train": {"iterations": 1.5}})
    with pytest.raises(UserError, match="model.photo_condition"):
        from_dict({"model": {"photo_condition": "yes"}})


def test_unknown_key_names_it_and_lists_valid_keys():
    with pytest.raises(UserError) as err:
        from_dict({"train": {"learning_rate": 1e-3}})
    msg = str(err.value)
    assert "train.learning_rate" in msg and "lr" in msg and "batch_size" in msg
    with pytest.raises(UserError, match="unknown config key 'trian'"):
        from_dict({"trian": {}})


def test_missing_files_and_bad_yaml(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(UserError, match="data.root"):
        load_config(None, [f"data.root={tmp_path / 'missing'}"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(UserError, match="section.key=value"):
        load_config(None, ["train.lr"])


def test_dump_round_trip(tmp_path):
    cfg = load_config(None, ["train.name=x", "model.scale=1"])
    again = from_dict(yaml.safe_load(dump_config(cfg)))
    assert again == cfg
