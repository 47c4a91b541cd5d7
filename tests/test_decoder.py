"""Our Decoder equals transformers' GPT2LMHeadModel; its KV cache equals one full pass; causal vs bidirectional."""

import math

import pytest
import torch
from transformers import BartConfig, BartForConditionalGeneration, GPT2Config, GPT2LMHeadModel

from course_utils.attention import KVCache
from course_utils.hf import decoder_from_gpt2, decoder_to_gpt2
from course_utils.models import Decoder

V = 101


def _gpt2(seed=0, **extra):
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=V, n_positions=24, n_embd=32, n_layer=2, n_head=4, resid_pdrop=0.0, embd_pdrop=0.0,
        attn_pdrop=0.0, bos_token_id=None, eos_token_id=None, attn_implementation="eager", **extra,
    )
    gpt2 = GPT2LMHeadModel(config).eval()
    with torch.no_grad():  # non-trivial norms and biases, so a swapped or lost one would show
        for name, p in gpt2.named_parameters():
            if "ln_" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    return gpt2


def _left_padded_batch():
    """Ids, attention mask and position_ids as generate() builds them: cumsum - 1, padding set to 1."""
    ids = torch.randint(0, V, (3, 9), generator=torch.Generator().manual_seed(1))
    mask = torch.ones(3, 9, dtype=torch.long)
    mask[1, :3] = 0
    mask[2, :6] = 0
    position_ids = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)
    return ids, mask, position_ids


def _compare(gpt2, ours, ids, mask, position_ids):
    """Max abs differences of logits, hidden states and attention weights, at real (non-pad) query positions."""
    with torch.no_grad():
        theirs = gpt2(ids, attention_mask=mask, position_ids=position_ids, output_attentions=True,
                      output_hidden_states=True)
        mine = ours(ids, mask, position_ids=position_ids)
    real = mask.bool()  # (B, L): padded queries attend to nothing in ours, uniformly in transformers
    dl = (theirs.logits - mine.logits)[real].abs().max().item()
    # transformers' last hidden state is after ln_f, ours before it
    ours_hidden = (*mine.hidden_states[:-1], ours.norm(mine.hidden_states[-1]))
    assert len(ours_hidden) == len(theirs.hidden_states) == 3
    dh = max((a - b)[real].abs().max().item() for a, b in zip(theirs.hidden_states, ours_hidden))
    da = max((a - b).transpose(1, 2)[real].abs().max().item() for a, b in zip(theirs.attentions, mine.attentions))
    return dl, dh, da


@pytest.mark.parametrize("seed, act", [(0, "gelu_new"), (1, "relu")])
def test_gpt2_both_ways_with_left_padding(seed, act):
    gpt2 = _gpt2(seed, activation_function=act)
    ours = decoder_from_gpt2(gpt2)
    ids, mask, position_ids = _left_padded_batch()
    dl, dh, da = _compare(gpt2, ours, ids, mask, position_ids)
    print(f"GPT-2 -> ours ({act}): logits {dl:.1e}, hidden {dh:.1e}, attention {da:.1e}")
    assert dl < 1e-4 and dh < 1e-4 and da < 1e-5, (dl, dh, da)
    back = decoder_to_gpt2(ours)  # and back again: our weights inside transformers
    assert back.lm_head.weight is back.transformer.wte.weight  # still tied
    for name, p in gpt2.state_dict().items():
        assert torch.equal(p, back.state_dict()[name]), name
    dl, dh, da = _compare(back, ours, ids, mask, position_ids)
    assert dl < 1e-4 and dh < 1e-4 and da < 1e-5, (dl, dh, da)


def test_decoder_to_gpt2_from_our_random_decoder():
    torch.manual_seed(2)
    ours = Decoder(V, d_model=48, n_heads=3, n_layers=2, d_ff=80, max_len=16).eval()
    gpt2 = decoder_to_gpt2(ours)
    assert gpt2.config.n_inner == 80 and gpt2.config.activation_function == "gelu_new"
    ids = torch.randint(0, V, (2, 16))
    mask = torch.ones(2, 16, dtype=torch.long)
    dl, dh, da = _compare(gpt2, ours, ids, mask, None)
    print(f"ours -> GPT-2: logits {dl:.1e}, hidden {dh:.1e}, attention {da:.1e}")
    assert dl < 1e-4 and dh < 1e-4 and da < 1e-5, (dl, dh, da)


def test_kv_cache_token_by_token_equals_full_forward_with_left_padding():
    ours = decoder_from_gpt2(_gpt2(3))
    ids, mask, position_ids = _left_padded_batch()
    with torch.no_grad():
        full = ours(ids, mask, position_ids=position_ids)
        cache = KVCache()
        steps = [ours(ids[:, :4], mask[:, :4], position_ids=position_ids[:, :4], cache=cache)]  # the prompt
        for t in range(4, 9):  # then one token at a time; the mask covers the cached keys too
            steps.append(ours(ids[:, t:t + 1], mask[:, :t + 1], position_ids=position_ids[:, t:t + 1], cache=cache))
    assert cache.length == 9 and len(cache) == 2
    assert steps[-1].attentions[0].shape == (3, 4, 1, 9)  # one query, all 9 keys
    logits = torch.cat([s.logits for s in steps], dim=1)
    real = mask.bool()
    diff = (logits - full.logits)[real].abs().max().item()
    print(f"Decoder KV cache vs full pass: {diff:.1e}")
    assert diff < 1e-5


def test_kv_cache_default_positions_continue_after_the_cache():
    torch.manual_seed(4)
    ours = Decoder(V, d_model=32, n_heads=4, n_layers=2, max_len=12).eval()
    ids = torch.randint(0, V, (2, 7))
    with torch.no_grad():
        full = ours(ids).logits
        cache = KVCache()
        logits = torch.cat([ours(ids[:, t:t + 1], cache=cache).logits for t in range(7)], dim=1)
    assert (logits - full).abs().max() < 1e-5


def test_kv_cache_reorder_selects_beams():
    torch.manual_seed(5)
    ours = Decoder(V, d_model=32, n_heads=4, n_layers=2, max_len=12).eval()
    ids = torch.randint(0, V, (3, 6))
    beams = torch.tensor([2, 0, 0])  # beam search keeps beam 2 once and beam 0 twice
    nxt = torch.randint(0, V, (3, 1))
    with torch.no_grad():
        cache = KVCache()
        ours(ids[:, :5], cache=cache)
        cache.reorder(beams)
        step = ours(torch.cat([ids[beams, 5:], nxt], dim=1), cache=cache).logits  # (3, 2, V)
        full = ours(torch.cat([ids[beams], nxt], dim=1)).logits  # (3, 7, V)
    assert (step - full[:, 5:]).abs().max() < 1e-5


def test_causal_decoder_cannot_see_the_future_bidirectional_can():
    torch.manual_seed(6)
    causal = Decoder(V, d_model=32, n_heads=4, n_layers=2, max_len=12).eval()
    bidirectional = Decoder(V, d_model=32, n_heads=4, n_layers=2, max_len=12, causal=False).eval()
    bidirectional.load_state_dict(causal.state_dict())  # the same weights: only the mask differs
    ids = torch.randint(0, V, (1, 8))
    changed = ids.clone()
    changed[0, 6] = (ids[0, 6] + 1) % V  # change a later token
    with torch.no_grad():
        for model, sees_future in ((causal, False), (bidirectional, True)):
            a, b = model(ids).logits, model(changed).logits
            early = (a[0, :6] - b[0, :6]).abs().max().item()  # positions before the change
            assert (early > 1e-3) == sees_future, early
            assert (a[0, 6:] - b[0, 6:]).abs().max() > 1e-3  # the change itself always shows
        assert (causal(ids[:, :1]).logits[0, 0] - causal(ids).logits[0, 0]).abs().max() < 1e-5  # w_1 alone


def test_gpt2_initialisation():
    torch.manual_seed(7)
    n_layers = 8
    ours = Decoder(500, d_model=128, n_heads=4, n_layers=n_layers, max_len=64)
    std = lambda w: w.detach().std().item()  # noqa: E731
    assert abs(std(ours.tok.weight) - 0.02) < 0.001 and abs(std(ours.pos.weight) - 0.02) < 0.001
    layer = ours.layers[3]
    residual = 0.02 / math.sqrt(2 * n_layers)  # GPT-2's scaled projections into the residual stream
    assert abs(std(layer.attn.q_proj.weight) - 0.02) < 0.001 and abs(std(layer.ffn.w1.weight) - 0.02) < 0.001
    assert abs(std(layer.attn.out_proj.weight) - residual) < 0.05 * residual
    assert abs(std(layer.ffn.w2.weight) - residual) < 0.05 * residual
    assert torch.equal(layer.ffn.w2.bias, torch.zeros(128)) and torch.equal(ours.norm.weight, torch.ones(128))
    with torch.no_grad():  # at initialisation every next token is about equally likely: loss ~ ln V
        logits = ours(torch.randint(0, 500, (4, 32))).logits
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), torch.randint(0, 500, (128,)))
    assert abs(loss.item() - math.log(500)) < 0.1


def _cached(n):
    """A KVCache already holding n tokens of a 2-layer Decoder (batch 1)."""
    cache = KVCache()
    for layer in range(2):
        cache[layer].update(torch.zeros(1, 2, n, 8), torch.zeros(1, 2, n, 8))
    return cache


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda d: d(torch.tensor([[1, 60]])), ValueError, r"input_ids must lie in \[0, 50\)"),
        (lambda d: d(torch.tensor([[1.0, 2.0]])), TypeError, "integer"),
        (lambda d: d(torch.ones(3, dtype=torch.long)), ValueError, "2 dimensions"),
        (lambda d: d(torch.ones(1, 0, dtype=torch.long)), ValueError, "at least one token"),
        (lambda d: d(torch.ones(1, 13, dtype=torch.long)), ValueError,
         r"prompt of 13 tokens \+ 0 cached exceeds max_len=12"),
        (lambda d: d(torch.ones(1, 3, dtype=torch.long), cache=_cached(10)), ValueError,
         r"prompt of 3 tokens \+ 10 cached exceeds max_len=12"),
        (lambda d: d(torch.ones(1, 3, dtype=torch.long), torch.ones(1, 4)), ValueError,
         r"attention_mask must have shape \(1, 3\)"),
        (lambda d: d(torch.ones(1, 1, dtype=torch.long), torch.ones(1, 1), cache=_cached(2)), ValueError,
         r"attention_mask must have shape \(1, 3\)"),  # the mask covers the cached keys too
        (lambda d: d(torch.ones(1, 3, dtype=torch.long), torch.full((1, 3), 2)), ValueError, "only 0"),
        (lambda d: d(torch.ones(1, 3, dtype=torch.long), position_ids=torch.tensor([[0, 1, 12]])), ValueError,
         r"position_ids must lie in \[0, 12\)"),
        (lambda d: d(torch.ones(1, 3, dtype=torch.long), position_ids=torch.tensor([[0, 1]])), ValueError,
         "position_ids must have the shape"),
        (lambda d: d(torch.ones(1, 3, dtype=torch.long), cache=[]), TypeError, "KVCache"),
        (lambda d: Decoder(50, d_model=16, n_heads=2, n_layers=2, max_len=12, causal=False)(
            torch.ones(1, 3, dtype=torch.long), cache=KVCache()), ValueError, "causal=True"),
        (lambda d: Decoder(50, causal=1), TypeError, "causal must be a bool"),
        (lambda d: Decoder(0), ValueError, "vocab_size"),
        (lambda d: Decoder(50, d_model=16, n_heads=3), ValueError, "divisible"),
        (lambda d: decoder_from_gpt2(d), TypeError, "GPT2LMHeadModel"),
        (lambda d: decoder_to_gpt2(torch.nn.Linear(2, 2)), TypeError, "Decoder"),
        (lambda d: decoder_to_gpt2(Decoder(50, d_model=16, n_heads=2, n_layers=1, causal=False)), ValueError, "causal"),
    ],
)
def test_bad_input(call, error, match):
    decoder = Decoder(50, d_model=16, n_heads=2, n_layers=2, max_len=12)
    with pytest.raises(error, match=match):
        call(decoder)


def test_converters_reject_other_architectures_and_configs():
    bart = BartForConditionalGeneration(BartConfig(
        vocab_size=30, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=16, decoder_ffn_dim=16, max_position_embeddings=8,
    ))
    with pytest.raises(TypeError, match="must be a transformers.GPT2LMHeadModel, got BartForConditionalGeneration"):
        decoder_from_gpt2(bart)
    for extra, name in [({"scale_attn_by_inverse_layer_idx": True}, "scale_attn_by_inverse_layer_idx"),
                        ({"scale_attn_weights": False}, "scale_attn_weights"),
                        ({"activation_function": "silu"}, "activation_function"),
                        ({"tie_word_embeddings": False}, "tie_word_embeddings")]:
        with pytest.raises(ValueError, match=f"cannot express this GPT-2 config: {{'{name}'"):
            decoder_from_gpt2(_gpt2(**extra))
