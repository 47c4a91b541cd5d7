"""Our EncoderDecoder equals transformers' BartForConditionalGeneration; its KV cache equals one full pass."""

import pytest
import torch
import transformers.models.bart.modeling_bart as modeling_bart
from transformers import BartConfig, BartForConditionalGeneration, GPT2Config, GPT2LMHeadModel

from course_utils.attention import KVCache
from course_utils.generation import generate
from course_utils.hf import encoder_decoder_from_bart, encoder_decoder_to_bart
from course_utils.models import EncoderDecoder, shift_tokens_right

V = 97


def _bart(seed=0, **extra):
    torch.manual_seed(seed)
    config = BartConfig(**{
        "vocab_size": V, "max_position_embeddings": 20, "d_model": 32, "encoder_layers": 2, "decoder_layers": 2,
        "encoder_attention_heads": 4, "decoder_attention_heads": 4, "encoder_ffn_dim": 48, "decoder_ffn_dim": 48,
        "dropout": 0.0, "attn_implementation": "eager", **extra,
    })
    bart = BartForConditionalGeneration(config).eval()
    with torch.no_grad():  # non-trivial norms, biases and final_logits_bias, so a swapped or lost one would show
        for name, p in (*bart.named_parameters(), ("final_logits_bias", bart.final_logits_bias)):
            if "layer_norm" in name or "layernorm" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    return bart


def _padded_batch():
    """A right-padded source (B, 8) and a right-padded target (B, 6), with their 0/1 masks."""
    g = torch.Generator().manual_seed(1)
    src, tgt = torch.randint(3, V, (3, 8), generator=g), torch.randint(3, V, (3, 6), generator=g)
    src_mask, tgt_mask = torch.ones(3, 8, dtype=torch.long), torch.ones(3, 6, dtype=torch.long)
    src_mask[1, 5:] = 0
    src_mask[2, 2:] = 0
    tgt_mask[1, 4:] = 0
    tgt_mask[2, 1:] = 0
    return src.masked_fill(src_mask == 0, 1), src_mask, tgt.masked_fill(tgt_mask == 0, 1), tgt_mask


def _compare(bart, ours, src, src_mask, tgt, tgt_mask):
    """Max abs differences of logits, encoder output (real positions), decoder and cross-attention weights."""
    with torch.no_grad():
        theirs = bart(src, attention_mask=src_mask, decoder_input_ids=tgt, decoder_attention_mask=tgt_mask,
                      output_attentions=True)
        mine = ours(src, tgt, src_mask, tgt_mask)
    dl = (theirs.logits - mine.logits)[tgt_mask.bool()].abs().max().item()
    de = (theirs.encoder_last_hidden_state - mine.encoder_last_hidden_state)[src_mask.bool()].abs().max().item()
    assert len(mine.decoder_attentions) == len(theirs.decoder_attentions) == bart.config.decoder_layers
    ds = max((a - b).abs().max().item() for a, b in zip(theirs.decoder_attentions, mine.decoder_attentions))
    dc = max((a - b).abs().max().item() for a, b in zip(theirs.cross_attentions, mine.cross_attentions))
    return dl, de, ds, dc


def test_bart_both_ways_with_padded_source_and_target():
    bart = _bart()
    ours = encoder_decoder_from_bart(bart)
    assert (ours.config.pad_token_id, ours.config.bos_token_id, ours.config.eos_token_id, ours.config.decoder_start_token_id) == (1, 0, 2, 2)
    batch = _padded_batch()
    dl, de, ds, dc = _compare(bart, ours, *batch)
    print(f"BART -> ours: logits {dl:.1e}, encoder {de:.1e}, self-attention {ds:.1e}, cross-attention {dc:.1e}")
    assert dl < 1e-4 and de < 1e-4 and ds < 1e-5 and dc < 1e-5, (dl, de, ds, dc)
    back = encoder_decoder_to_bart(ours)  # and back again: our weights inside transformers
    assert back.lm_head.weight is back.model.shared.weight is back.model.decoder.embed_tokens.weight  # still tied
    for name, p in bart.state_dict().items():
        assert torch.equal(p, back.state_dict()[name]), name
    dl, de, ds, dc = _compare(back, ours, *batch)
    assert dl < 1e-4 and de < 1e-4 and ds < 1e-5 and dc < 1e-5, (dl, de, ds, dc)


def test_encoder_decoder_to_bart_from_ours_with_unequal_stacks():
    torch.manual_seed(2)
    ours = EncoderDecoder(V, d_model=48, n_heads=3, n_encoder_layers=3, n_decoder_layers=1, d_ff=64, max_len=16)
    with torch.no_grad():
        ours.final_logits_bias.normal_()
    bart = encoder_decoder_to_bart(ours.eval())
    assert (bart.config.encoder_layers, bart.config.decoder_layers, bart.config.encoder_ffn_dim) == (3, 1, 64)
    src, tgt = torch.randint(0, V, (2, 16)), torch.randint(0, V, (2, 5))
    ones = torch.ones
    dl, de, ds, dc = _compare(bart, ours, src, ones(2, 16, dtype=torch.long), tgt, ones(2, 5, dtype=torch.long))
    print(f"ours -> BART: logits {dl:.1e}, encoder {de:.1e}, self-attention {ds:.1e}, cross-attention {dc:.1e}")
    assert dl < 1e-4 and de < 1e-4 and ds < 1e-5 and dc < 1e-5, (dl, de, ds, dc)


def test_kv_cache_token_by_token_equals_full_forward():
    ours = encoder_decoder_from_bart(_bart(3))
    src, src_mask, tgt, tgt_mask = _padded_batch()
    with torch.no_grad():
        full = ours(src, tgt, src_mask, tgt_mask)
        h = ours.encode(src, src_mask)
        cache = KVCache()
        steps = []
        for t in range(6):
            steps.append(ours.decode(tgt[:, t:t + 1], h, src_mask, decoder_attention_mask=tgt_mask[:, :t + 1],
                                     cache=cache))
            assert [layer.cross is not None for layer in cache.layers] == [True, True]  # cross-attention keys and values, projected at the first step
    assert cache.length == 6
    assert steps[-1].cross_attentions[0].shape == (3, 4, 1, 8)
    logits = torch.cat([s.logits for s in steps], dim=1)
    real = tgt_mask.bool()
    diff = (logits - full.logits)[real].abs().max().item()
    cross = torch.cat([s.cross_attentions[1] for s in steps], dim=2)
    dc = (cross - full.cross_attentions[1]).abs().max().item()
    print(f"EncoderDecoder KV cache vs full pass: logits {diff:.1e}, cross-attention {dc:.1e}")
    assert diff < 1e-5 and dc < 1e-5


def test_kv_cache_reorder_selects_beams_of_decoder_and_cross_attention():
    torch.manual_seed(4)
    ours = EncoderDecoder(V, d_model=32, n_heads=4, max_len=12).eval()
    src, tgt = torch.randint(3, V, (3, 7)), torch.randint(3, V, (3, 5))
    beams = torch.tensor([2, 0, 0])  # beam search keeps beam 2 once and beam 0 twice
    with torch.no_grad():
        h = ours.encode(src)
        cache = KVCache()
        ours.decode(tgt[:, :4], h, cache=cache)
        cache.reorder(beams)
        step = ours.decode(tgt[beams, 4:], h[beams], cache=cache).logits  # (3, 1, V)
        full = ours(src[beams], tgt[beams]).logits  # (3, 5, V)
    assert (step - full[:, 4:]).abs().max() < 1e-5


def test_beam_search_finds_the_same_texts_with_and_without_the_cache():
    """Beams of one source share h^enc, so beam search need not reorder the cross-attention cache (generation.py)."""
    torch.manual_seed(6)
    ours = EncoderDecoder(V, d_model=32, n_heads=4, max_len=12).eval()
    src = torch.randint(3, V, (3, 7))
    cached = generate(ours, src, 8, num_beams=3, eos_token_id=2, pad_token_id=1)
    recomputed = generate(ours, src, 8, num_beams=3, eos_token_id=2, pad_token_id=1, use_cache=False)
    assert torch.equal(cached, recomputed)


def test_cross_attention_reads_the_source_and_ignores_its_padding():
    torch.manual_seed(5)
    ours = EncoderDecoder(V, d_model=32, n_heads=4, max_len=12).eval()
    src, tgt = torch.randint(3, V, (1, 6)), torch.randint(3, V, (1, 4))
    mask = torch.tensor([[1, 1, 1, 1, 0, 0]])
    changed_real, changed_pad = src.clone(), src.clone()
    changed_real[0, 1] = (src[0, 1] + 1) % V
    changed_pad[0, 5] = (src[0, 5] + 1) % V
    with torch.no_grad():
        out = ours(src, tgt, mask)
        assert (ours(changed_real, tgt, mask).logits - out.logits).abs().max() > 1e-4
        assert (ours(changed_pad, tgt, mask).logits - out.logits).abs().max() < 1e-6
    assert torch.equal(out.cross_attentions[0][..., 4:], torch.zeros(1, 4, 4, 2))  # no weight on padded keys
    assert torch.allclose(out.cross_attentions[0].sum(-1), torch.ones(1, 4, 4))


def test_shift_tokens_right_equals_transformers():
    labels = torch.tensor([[0, 11, 12, 2, -100, -100], [0, 13, 2, -100, -100, -100]])
    ours = shift_tokens_right(labels, pad_token_id=1, decoder_start_token_id=2)
    assert torch.equal(ours, modeling_bart.shift_tokens_right(labels, 1, 2))
    assert ours.tolist() == [[2, 0, 11, 12, 2, 1], [2, 0, 13, 2, 1, 1]]


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda m: m(torch.ones(1, 0, dtype=torch.long), torch.ones(1, 2, dtype=torch.long)), ValueError,
         r"input_ids \(the source\) must hold at least one token"),
        (lambda m: m.encode(torch.ones(1, 13, dtype=torch.long)), ValueError, "13 positions, more than max_len=12"),
        (lambda m: m(torch.ones(1, 3, dtype=torch.long), torch.ones(1, 13, dtype=torch.long)), ValueError,
         r"decoder_input_ids of 13 tokens \+ 0 cached exceeds max_len=12"),
        (lambda m: m(torch.tensor([[1, 50]]), torch.ones(1, 2, dtype=torch.long)), ValueError,
         r"input_ids must lie in \[0, 50\)"),
        (lambda m: m(torch.ones(1, 2, dtype=torch.long), torch.tensor([[-1, 3]])), ValueError,
         r"decoder_input_ids must lie in \[0, 50\)"),
        (lambda m: m(torch.ones(1, 2, dtype=torch.long), torch.ones(2, 2, dtype=torch.long)), ValueError,
         "the source's batch size 1"),
        (lambda m: m(torch.ones(1, 2, dtype=torch.long), torch.ones(1, 2, dtype=torch.long), torch.ones(1, 3)),
         ValueError, r"attention_mask must have shape \(1, 2\)"),
        (lambda m: m(torch.ones(1, 2, dtype=torch.long), torch.ones(1, 2, dtype=torch.long), None, torch.ones(1, 3)),
         ValueError, r"decoder_attention_mask must have shape \(1, 2\)"),
        (lambda m: m.decode(torch.ones(1, 2, dtype=torch.long), torch.zeros(1, 3, 8)), ValueError,
         "encoder_hidden must have shape"),
        (lambda m: m.decode(torch.ones(1, 2, dtype=torch.long), torch.zeros(1, 0, 16)), ValueError,
         "encoder_hidden must have shape"),
        (lambda m: m.decode(torch.ones(1, 2, dtype=torch.long), torch.zeros(1, 3, 16), torch.ones(1, 2)), ValueError,
         r"encoder_attention_mask must have shape \(1, 3\)"),
        (lambda m: m.decode(torch.ones(1, 2, dtype=torch.long), torch.zeros(1, 3, 16), cache={}), TypeError,
         "KVCache"),
        (lambda m: EncoderDecoder(50, pad_token_id=50), ValueError, r"pad_token_id must lie in \[0, vocab_size=50\)"),
        (lambda m: EncoderDecoder(50, n_encoder_layers=0), ValueError, "n_encoder_layers"),
        (lambda m: shift_tokens_right(torch.ones(2, 3), 1, 2), TypeError, "labels must be an integer tensor"),
        (lambda m: shift_tokens_right(torch.ones(2, 3, dtype=torch.long), None, 2), TypeError, "pad_token_id"),
        (lambda m: encoder_decoder_from_bart(m), TypeError, "BartForConditionalGeneration"),
        (lambda m: encoder_decoder_to_bart(torch.nn.Linear(2, 2)), TypeError, "EncoderDecoder"),
        (lambda m: encoder_decoder_to_bart(EncoderDecoder(50, d_model=16, n_heads=2, eps=1e-6)), ValueError, "eps"),
    ],
)
def test_bad_input(call, error, match):
    model = EncoderDecoder(50, d_model=16, n_heads=2, max_len=12)
    with pytest.raises(error, match=match):
        call(model)


def test_converters_reject_other_architectures_and_configs():
    config = GPT2Config(vocab_size=30, n_positions=8, n_embd=16, n_layer=1, n_head=2, bos_token_id=None,
                        eos_token_id=None)
    gpt2 = GPT2LMHeadModel(config)
    with pytest.raises(TypeError, match="must be a transformers.BartForConditionalGeneration, got GPT2LMHeadModel"):
        encoder_decoder_from_bart(gpt2)
    for extra, name in [({"scale_embedding": True}, "scale_embedding"),
                        ({"decoder_attention_heads": 2}, "decoder_attention_heads"),
                        ({"decoder_ffn_dim": 40}, "decoder_ffn_dim"),
                        ({"activation_function": "silu"}, "activation_function"),
                        ({"tie_word_embeddings": False}, "tie_word_embeddings")]:
        with pytest.raises(ValueError, match=f"cannot express this BART config: {{'{name}'"):
            encoder_decoder_from_bart(_bart(**extra))
