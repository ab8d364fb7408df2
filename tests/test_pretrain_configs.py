"""The shipped pretraining configs parse into the script's dataclasses, and default.yaml
is exactly the no-argument run."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from selfsup.cli import parse_config
from selfsup.errors import InputError
from selfsup.pretrain.config import DataConfig, ModelConfig
from selfsup.training import TrainingConfig

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("pretrain_script", ROOT / "scripts" / "pretrain.py")
pretrain = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pretrain)
TYPES = (DataConfig, ModelConfig, TrainingConfig)


def test_default_yaml_is_the_no_argument_run():
    no_args = parse_config(TYPES, [], defaults=pretrain.DEFAULTS)
    from_file = parse_config(TYPES, ["--config", str(ROOT / "configs/pretrain/default.yaml")],
                             defaults=pretrain.DEFAULTS)
    assert from_file == no_args
    assert no_args[0].corpus == "stdlib"


@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "pretrain").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_parses_and_command_line_flags_win(path):
    data, model, train = parse_config(TYPES, ["--config", str(path), "--learning_rate", "0.123"],
                                      defaults=pretrain.DEFAULTS)
    assert train.learning_rate == 0.123
    assert model.hidden_size % model.num_attention_heads == 0
    assert data.max_seq_length <= 512


@pytest.mark.parametrize("line, field", [("num_train_epochs: three", "num_train_epochs"),
                                         ("learning_rat: 0.1", "learning_rat")])
def test_a_bad_config_file_fails_naming_the_file_and_the_key(tmp_path, line, field):
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"corpus: stdlib\n{line}\n")
    with pytest.raises(InputError, match=f"bad.yaml.*{field}"):
        parse_config(TYPES, ["--config", str(bad)], defaults=pretrain.DEFAULTS)
