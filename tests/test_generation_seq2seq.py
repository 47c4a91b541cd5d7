"""generate() with our EncoderDecoder equals transformers' BartForConditionalGeneration.generate on the same weights."""

import pytest
import torch
from transformers import GenerationConfig

from course_utils import set_seed
from course_utils.generation import generate
from course_utils.hf import encoder_decoder_to_bart
from course_utils.models import EncoderDecoder


@pytest.fixture(scope="module")
def models():
    set_seed(0)
    ours = EncoderDecoder(40, d_model=32, n_heads=4, n_encoder_layers=2, n_decoder_layers=2, max_len=32).eval()
    with torch.no_grad():  # a random model rarely ends: make eos (2) likelier so that rows stop at different steps
        ours.final_logits_bias[2] = 2.5
    return ours, encoder_decoder_to_bart(ours).eval()


def _source():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 40, (3, 9), generator=g)
    ids[:, 0], mask = 0, torch.ones_like(ids)
    ids[1, 6:], mask[1, 6:] = 1, 0  # BART pads on the right
    return ids, mask


@pytest.mark.parametrize("num_beams, length_penalty, early_stopping", [(1, 1.0, False), (3, 1.0, False),
                                                                        (3, 2.0, True), (2, 0.0, "never")])
def test_seq2seq_generate_equals_transformers(models, num_beams, length_penalty, early_stopping):
    ours, theirs = models
    ids, mask = _source()
    config = GenerationConfig(max_new_tokens=12, num_beams=num_beams, do_sample=False, length_penalty=length_penalty,
                              early_stopping=early_stopping, eos_token_id=2, pad_token_id=1, decoder_start_token_id=2,
                              forced_eos_token_id=None, forced_bos_token_id=None)
    expected = theirs.generate(input_ids=ids, attention_mask=mask, generation_config=config)
    got = generate(ours, ids, 12, num_beams=num_beams, length_penalty=length_penalty, early_stopping=early_stopping,
                   eos_token_id=2, pad_token_id=1, attention_mask=mask)
    assert torch.equal(got, expected), (got, expected)
    assert torch.equal(generate(ours, ids, 12, num_beams=num_beams, length_penalty=length_penalty,
                                early_stopping=early_stopping, eos_token_id=2, pad_token_id=1, attention_mask=mask,
                                use_cache=False), got)


@pytest.mark.parametrize("num_beams", [1, 3])
def test_seq2seq_no_repeat_ngram_size_equals_transformers(models, num_beams):
    """BART's summarisation checkpoints decode with no_repeat_ngram_size=3; the ban counts decoder tokens only."""
    ours, theirs = models
    ids, mask = _source()
    config = GenerationConfig(max_new_tokens=20, num_beams=num_beams, do_sample=False, no_repeat_ngram_size=2,
                              eos_token_id=3, pad_token_id=1, decoder_start_token_id=2, forced_eos_token_id=None,
                              forced_bos_token_id=None)
    forced, theirs.generation_config.forced_eos_token_id = theirs.generation_config.forced_eos_token_id, None
    try:  # BART's config forces eos (2) at the length limit, and None in `config` does not override it
        expected = theirs.generate(input_ids=ids, attention_mask=mask, generation_config=config)
    finally:
        theirs.generation_config.forced_eos_token_id = forced
    got = generate(ours, ids, 20, num_beams=num_beams, no_repeat_ngram_size=2, eos_token_id=3, pad_token_id=1,
                   attention_mask=mask)  # eos 3: a rare token, so that rows run long enough to repeat themselves
    assert torch.equal(got, expected), (got, expected)
    free = generate(ours, ids, 20, num_beams=num_beams, eos_token_id=3, pad_token_id=1, attention_mask=mask)
    assert not torch.equal(got, free)  # the random model repeats itself without the ban


def test_seq2seq_sampling_equals_transformers(models):
    ours, theirs = models
    ids, mask = _source()
    config = GenerationConfig(max_new_tokens=10, do_sample=True, top_k=8, top_p=0.9, temperature=0.7, eos_token_id=2,
                              pad_token_id=1, decoder_start_token_id=2, forced_eos_token_id=None)
    torch.manual_seed(3)
    expected = theirs.generate(input_ids=ids, attention_mask=mask, generation_config=config)
    torch.manual_seed(3)
    got = generate(ours, ids, 10, do_sample=True, top_k=8, top_p=0.9, temperature=0.7, eos_token_id=2,
                   pad_token_id=1, attention_mask=mask)
    assert torch.equal(got, expected)


def test_seq2seq_target_must_fit_the_positions(models):
    ours, _ = models
    with pytest.raises(ValueError, match="decoder_start \\+ max_new_tokens"):
        generate(ours, _source()[0], 32)
