import pytest

from ds2.train.config import config_from_dict, config_to_dict, resolve_config


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
])
def test_bad_options_are_reported(override, message):
    with pytest.raises(ValueError, match=message):
        resolve_config(None, [override])
