"""The shipped checkpoints: their configs, the safetensors files with the config in the metadata, the loaders."""

import json
from dataclasses import asdict

import pytest
import torch
from safetensors.torch import save_file

from course_utils import checkpoints
from course_utils.checkpoints import (
    TINY_BART_CONFIG, TINY_BART_PATH, TINY_BERT_CONFIG, TINY_BERT_PATH, TINY_GPT_CONFIG, TINY_GPT_PATH, load_card,
    load_checkpoint, load_tiny_bart, load_tiny_bert, load_tiny_gpt, read_metadata, save_checkpoint,
)
from course_utils.models import Decoder, DecoderConfig

# the constructor's keyword arguments that the shipped files carry in their metadata (written before the configs)
SHIPPED = {
    TINY_BERT_PATH: dict(vocab_size=8000, d_model=128, n_heads=4, n_layers=4, d_ff=512, max_len=64),
    TINY_GPT_PATH: dict(vocab_size=8000, d_model=128, n_heads=4, n_layers=4, d_ff=512, max_len=128),
    TINY_BART_PATH: dict(vocab_size=8000, d_model=128, n_heads=4, n_encoder_layers=2, n_decoder_layers=3, d_ff=512,
                         max_len=128),
}


@pytest.fixture(scope="module")
def bert():
    return load_tiny_bert()


def test_checkpoints_are_small_ship_a_card_and_carry_todays_configs():
    for (path, kwargs), config in zip(SHIPPED.items(), (TINY_BERT_CONFIG, TINY_GPT_CONFIG, TINY_BART_CONFIG)):
        assert path.stat().st_size <= 10 * 2**20 and path.with_suffix(".md").is_file()
        assert json.loads(read_metadata(path)["config"]) == kwargs  # the old metadata: a dict of kwargs
        assert {k: v for k, v in asdict(config).items() if k in kwargs} == kwargs  # the configs hold those values
        assert type(config)(**kwargs) == config  # and nothing else differs from the defaults
        assert load_card(path)["config"] == kwargs


def test_the_loaders_build_the_configs_model(bert):
    assert bert.encoder.config == TINY_BERT_CONFIG and not bert.training
    assert bert.mlm.embedding.weight is bert.encoder.embeddings.tok.weight  # the tie survives the round trip
    assert load_tiny_gpt().config == TINY_GPT_CONFIG and load_tiny_bart().config == TINY_BART_CONFIG


def test_save_then_load_round_trips_the_config_and_the_weights(tmp_path):
    torch.manual_seed(0)
    config = DecoderConfig(50, d_model=16, n_heads=2, n_layers=1, max_len=8, dropout=0.1)
    model = Decoder.from_config(config)
    card = {"config": asdict(config), "recipe": {}, "wall_minutes": 0.0, "threads": 1, "final_loss": 1.0,
            "metrics": {}}
    out = tmp_path / "toy.safetensors"
    save_checkpoint(model, out, config, card, "toy", "gpt", [3.0, 2.0, 1.0])
    assert json.loads(read_metadata(out)["config"]) == asdict(config) and load_card(out) == card
    assert out.with_suffix(".md").read_text().startswith("# toy\n")
    again = load_tiny_gpt(out)
    assert again.config == config and not again.training
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in model.state_dict().items())


def test_a_checkpoint_that_does_not_match_its_config_is_refused(tmp_path, bert):
    state = {k: v.clone() for k, v in bert.state_dict().items() if k != "mlm.embedding.weight"}
    path = tmp_path / "wrong.safetensors"
    save_file(state, str(path), metadata={"config": json.dumps(asdict(TINY_BERT_CONFIG) | {"n_layers": 5})})
    with pytest.raises(ValueError, match="does not match its config"):
        load_tiny_bert(path)
    model = load_tiny_gpt()
    save_file({k: v.clone() for k, v in model.state_dict().items()}, str(path),
              metadata={"config": json.dumps(dict(SHIPPED[TINY_GPT_PATH], n_layers=3))})
    with pytest.raises(ValueError, match="does not match its config"):
        load_tiny_gpt(path)
    save_file({k: v.clone() for k, v in model.state_dict().items()}, str(path),
              metadata={"config": json.dumps(dict(SHIPPED[TINY_GPT_PATH], n_heads=3))})  # 128 % 3: a bad config
    with pytest.raises(ValueError, match="does not match its config"):
        load_tiny_gpt(path)


@pytest.mark.parametrize("setup, error, match", [
    (lambda p: None, FileNotFoundError, "python -m course_utils.pretrain bert"),
    (lambda p: save_file({"x": torch.zeros(1)}, str(p)), ValueError, "no 'config'"),
    (lambda p: p.write_text("not a checkpoint"), ValueError, r"x\.safetensors is not a safetensors checkpoint"),
    (lambda p: save_file({"x": torch.zeros(1)}, str(p), metadata={"config": "{oops"}), ValueError,
     "'config' that is not JSON"),
    (lambda p: save_file({"x": torch.zeros(1)}, str(p), metadata={"config": '{"colour": 1}'}), ValueError,
     "does not match its config"),
])
def test_bad_checkpoints_raise_errors_that_name_the_file(tmp_path, setup, error, match):
    path = tmp_path / "x.safetensors"
    setup(path)
    with pytest.raises(error, match=match):
        load_tiny_bert(path)


def test_bad_card_requests():
    path = checkpoints.ASSETS / "bpe.json"
    with pytest.raises(ValueError, match="bpe.json is not a safetensors checkpoint"):
        load_card(path)
    with pytest.raises(FileNotFoundError, match="missing"):
        read_metadata(checkpoints.ASSETS / "nothing.safetensors")
    with pytest.raises(ValueError, match="does not match its config"):
        load_checkpoint(TINY_GPT_PATH, DecoderConfig, lambda c: torch.nn.Linear(2, 2), "gpt")
    with pytest.raises(TypeError, match="config must be a model Config dataclass"):
        save_checkpoint(torch.nn.Linear(2, 2), checkpoints.ASSETS / "never.safetensors", {"d": 2}, {}, "", "", [])


_CARD = {"config": {}, "recipe": {}, "wall_minutes": 0.0, "threads": 1, "final_loss": 1.0, "metrics": {}}
_GPT = Decoder(20, d_model=8, n_heads=2, n_layers=1, max_len=8)


@pytest.mark.parametrize("call, error, match", [  # issue 17, second audit
    (lambda p: read_metadata(None), TypeError, "path must be a file path"),
    (lambda p: load_tiny_bert(5), TypeError, "path must be a file path"),
    (lambda p: read_metadata(p.parent), ValueError, "path must be a file, got the directory"),
    (lambda p: load_tiny_gpt(p.parent), ValueError, "path must be a file, got the directory"),
    (lambda p: load_checkpoint(TINY_GPT_PATH, dict, Decoder.from_config, "gpt"), TypeError,
     "config_class must be a model Config dataclass"),
    (lambda p: load_checkpoint(TINY_GPT_PATH, DecoderConfig, None, "gpt"), TypeError, "build must be a callable"),
    (lambda p: save_checkpoint("x", p, _GPT.config, _CARD, "t", "gpt", [1.0]), TypeError, "model must be a torch.nn"),
    (lambda p: save_checkpoint(_GPT, p, _GPT.config, {}, "t", "gpt", [1.0]), ValueError,
     r"card must hold .*missing \['config'"),
    (lambda p: save_checkpoint(_GPT, p, _GPT.config, None, "t", "gpt", [1.0]), TypeError, "card must be a dict"),
    (lambda p: save_checkpoint(_GPT, p.parent / "missing" / "x.safetensors", _GPT.config, _CARD, "t", "gpt", [1.0]),
     ValueError, "out must be a file path in an existing folder"),
    (lambda p: save_checkpoint(_GPT, None, _GPT.config, _CARD, "t", "gpt", [1.0]), TypeError, "out must be a file"),
    (lambda p: save_checkpoint(_GPT, p, _GPT.config, _CARD, "t", "gpt", None), TypeError, "history must be a list"),
])
def test_bad_input_raises_before_anything_is_written(tmp_path, call, error, match):
    with pytest.raises(error, match=match):
        call(tmp_path / "x.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_the_old_import_path_still_works():
    from course_utils import pretrain

    assert pretrain.load_tiny_bert is load_tiny_bert and pretrain.TINY_GPT_CONFIG is TINY_GPT_CONFIG
    assert pretrain.TINY_BART_PATH == TINY_BART_PATH
