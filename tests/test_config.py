import pytest

from ds2.config import config_from_dict, config_to_dict, resolve_config


def test_three_layers_defaults_file_overrides(tmp_path):
    conf = tmp_path / "c.yaml"
    conf.write_text("model:\n  rnn_layers: 2\n  rnn_hidden: 64\ntrain:\n  lr: 2e-3\n  epochs: 3\n")
    cfg = resolve_config(conf, ["train.epochs=5", "model.conv_strides=[[3, 2]]", "model.conv_channels=[8]",
                                "model.conv_kernels=[[5, 5]]"])
    assert cfg.model.rnn_layers == 2 and cfg.model.rnn_hidden == 64  # from the file
    assert cfg.train.lr == 2e-3 and isinstance(cfg.train.lr, float)  # YAML's "2e-3" string coerced
    assert cfg.train.epochs == 5  # the override wins over the file
    assert cfg.model.time_stride == 3
    assert cfg.train.max_duration == resolve_config().train.max_duration  # untouched default
    assert config_from_dict(config_to_dict(cfg)) == cfg


@pytest.mark.parametrize("override, message", [
    ("model.nope=1", "unknown option model.nope"),
    ("train.epochs=many", "train.epochs must be of type int"),
    ("model.rnn_type=transformer", "rnn_type must be"),
    ("epochs", "not of the form"),
    ("train.lr.x=1", "train.lr is an option, not a section"),
    ("model.conv_channels=4", r"model.conv_channels must be a list \(list\[int\]\), not 4"),
    ("model.conv_kernels=[[5, x]]", r"model.conv_kernels\[0\]\[1\] must be of type int"),
    ("train.sortagrad=1", "train.sortagrad must be of type bool"),
    ("train.dtype=float64", "train.dtype must be one of auto, float32, bfloat16, float16, not 'float64'"),
    ("train.epochs=0", "train.epochs must be at least 1, not 0"),
    ("train.max_duration=0", r"train.max_duration must be > 0"),
    ("train.lr=nan", "train.lr must be finite and > 0, not nan"),
    ("train.lr=-1e-3", "train.lr must be finite and > 0"),
    ("train.final_lr_ratio=2", "train.final_lr_ratio must be between 0 and 1"),
    ("train.num_buckets=0", "train.num_buckets must be at least 1"),
    ("model.rnn_hidden=0", "model.rnn_hidden must be at least 1"),
    ("model.dropout=1.5", "model.dropout must be >= 0 and < 1"),
    ("train.lr=[", "the value is not valid YAML"),
    ("model.aux_units=phones", r"model.aux_units must be '' \(none\) or pinyin, not 'phones'"),
    (["model.aux_units=pinyin", "model.aux_layer=0"], "model.aux_layer must be a recurrent layer, 1 to 5, not 0"),
    (["model.aux_units=pinyin", "model.rnn_layers=1"], "model.aux_layer must be a recurrent layer, 1 to 1, not 2"),
    (["model.aux_units=pinyin", "train.aux_weight=0"], "model.aux_units pinyin needs train.aux_weight > 0"),
    ("train.aux_weight=-0.5", "train.aux_weight must be >= 0"),
])
def test_bad_options_are_reported(override, message):
    with pytest.raises(ValueError, match=message):
        resolve_config(None, override if isinstance(override, list) else [override])


def test_dtype_defaults_to_auto_and_a_config_file_must_be_a_mapping(tmp_path):
    assert resolve_config().train.dtype == "auto"
    conf = tmp_path / "c.yaml"
    conf.write_text("- train\n")
    with pytest.raises(ValueError, match="must be a YAML mapping"):
        resolve_config(conf)
    conf.write_text("train: {epochs: 2\n")
    with pytest.raises(ValueError, match=r"c.yaml is not valid YAML: .* at line 2"):
        resolve_config(conf)
    conf.write_text("train:\n  lr: {x: 1}\n")
    with pytest.raises(ValueError, match=r"c.yaml: train.lr is an option, not a section"):
        resolve_config(conf)
