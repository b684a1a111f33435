from pathlib import Path

import pytest
import yaml

from ide.config import Config, dump_config, from_dict, load_config
from ide.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["cufs.yaml", "cufsf.yaml", "cufs_cpu.yaml", "cufsf_cpu.yaml", "demo.yaml"])
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


def test_defaults_are_the_paper_recipe():
    assert load_config(ROOT / "configs" / "cufs.yaml", ["data.root=synthetic"]) == Config()


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("train.lr=-1", "'train.lr' must be > 0"),
        ("train.ema=1.5", "'train.ema' must be in [0, 1)"),
        ("loss.gan=-0.1", "'loss.gan' must be >= 0"),
        ("stage1.blend=40", "'stage1.blend'"),
        ("train.precision=xx", "'train.precision' is 'xx'; choose one of: auto, fp32, bf16, fp16"),
        ("stage1.norm=zscore", "'stage1.norm'"),
        ("loss.perceptual.layer=conv9_9", "'loss.perceptual.layer'"),
        ("train.device=tpu", "train.device 'tpu' is not a device"),
        ("train.milestones=[20, 10]", "train.milestones"),
        ("stage1.step=20", "stage1.step (20) must be <= stage1.patch"),
        ("train.crop=64", "vgg128 judges 128x128 crops"),
    ],
)
def test_every_rule_is_checked_at_load(override, named):
    with pytest.raises(UserError) as err:
        load_config(None, [override])
    assert named in str(err.value) and "\n" not in str(err.value)


def test_discriminator_choice_is_checked_even_without_the_gan():
    with pytest.raises(UserError, match="model.discriminator"):
        load_config(None, ["model.discriminator=foo", "loss.gan=0"])
    assert load_config(None, ["train.crop=64", "loss.gan=0"]).train.crop == 64  # no D, no 128 rule


def test_vgg_weights_are_checked_when_training(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    load_config(None)  # stage 1 and inference need no VGG file
    with pytest.raises(UserError, match=r"put it exactly there.*hub/checkpoints/vgg19-dcbb9e9d\.pth|hub"):
        load_config(None, training=True)
    with pytest.raises(UserError, match="nope.pth not found"):
        load_config(None, [f"loss.perceptual.weights={tmp_path / 'nope.pth'}"], training=True)
    load_config(None, ["loss.perceptual.weight=0"], training=True)  # off: no file needed


def test_retired_keys_load_when_off_and_are_refused_when_on():
    old = {
        "model": {"space_to_depth": False, "disc_condition": False, "disc_norm": "batch"},
        "loss": {"feature_match": 0, "gradient": 0.0, "fsim": 0.0},
        "stage1": {"floor": 2.0, "norm": "mean"},  # the floor only acted under meanstd
    }
    assert from_dict(old) == Config()
    for section, key, on in [
        ("model", "space_to_depth", True),
        ("model", "disc_norm", "spectral"),
        ("loss", "fsim", 1.0),
        ("stage1", "floor", 2.0),
    ]:
        values = {section: {key: on, **({"norm": "meanstd"} if key == "floor" else {})}}
        with pytest.raises(UserError, match=f"'{section}.{key}' was retired"):
            from_dict(values)
    assert from_dict({"stage1": {"norm": "meanstd", "floor": 4.0}}).stage1.norm == "meanstd"


def test_choices_agree_with_the_modules_that_act_on_them():
    from ide import config_rules
    from ide.pgm import grid, synthesis

    assert config_rules.NORMS == grid.NORMS
    assert config_rules.MAX_BLEND == synthesis.MAX_BLEND
