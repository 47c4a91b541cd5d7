"""Today's decoder (Llama layout) from the lecture's parts: each part equals transformers' own module, the whole model
equals LlamaForCausalLM both ways and on SmolLM2's real weights read from its GGUF file, generate() included."""

import pytest
import torch
from transformers import LlamaConfig as TheirConfig
from transformers import LlamaForCausalLM
from transformers.models.llama import modeling_llama as ml

from course_utils.attention import KVCache, MultiHeadAttention, rotary_angles, rotate
from course_utils.generation import generate
from course_utils.hf import decoder_from_llama, decoder_to_llama
from course_utils.layers import LlamaLayer, RMSNorm, SwiGLU
from course_utils.models import LlamaConfig, LlamaDecoder

V = 97


def _their_config(**extra):
    options = dict(vocab_size=V, hidden_size=48, intermediate_size=80, num_hidden_layers=2, num_attention_heads=6,
                   num_key_value_heads=2, max_position_embeddings=64, rope_theta=500.0, rms_norm_eps=1e-6,
                   attn_implementation="eager", bos_token_id=None, eos_token_id=None, pad_token_id=None)
    return TheirConfig(**options | extra)


def _llama(seed=0, **extra):
    """A random LlamaForCausalLM with non-trivial norm gains, so a swapped or lost one would show."""
    torch.manual_seed(seed)
    model = LlamaForCausalLM(_their_config(**extra)).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(0.2 * torch.randn_like(p))
    return model


def _left_padded_batch(length=11):
    """Ids, attention mask and position_ids as generate() builds them (cumsum - 1, padding at 1)."""
    ids = torch.randint(0, V, (3, length), generator=torch.Generator().manual_seed(1))
    mask = torch.ones(3, length, dtype=torch.long)
    mask[1, :4] = 0
    mask[2, :1] = 0
    return ids, mask, (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)


def _x(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- the parts, each against transformers' module


def test_rmsnorm_equals_llama_rmsnorm_and_drops_the_mean():
    theirs = ml.LlamaRMSNorm(16, eps=1e-6)
    ours = RMSNorm(16, eps=1e-6)
    with torch.no_grad():
        theirs.weight.copy_(_x(16, seed=1))
        ours.weight.copy_(theirs.weight)
    x = _x(2, 5, 16) + 3.0  # a mean far from 0: LayerNorm would remove it, RMSNorm keeps it
    torch.testing.assert_close(ours(x), theirs(x), atol=1e-6, rtol=0)
    unit = RMSNorm(16)(x)
    assert torch.allclose(unit.pow(2).mean(-1), torch.ones(2, 5), atol=1e-4)  # root-mean-square 1
    assert unit.mean(-1).abs().min() > 0.5  # and not centred


def test_swiglu_equals_llama_mlp_and_keeps_the_parameter_count_of_eq_2():
    theirs = ml.LlamaMLP(_their_config(hidden_size=48, intermediate_size=80))
    ours = SwiGLU(48, 80)
    ours.load_state_dict({"w1.weight": theirs.gate_proj.weight, "w3.weight": theirs.up_proj.weight,
                          "w2.weight": theirs.down_proj.weight})
    y = _x(2, 5, 48)
    torch.testing.assert_close(ours(y), theirs(y), atol=1e-6, rtol=0)
    # the 8/3 default: three d x 8d/3 matrices hold as many weights as eq. (2)'s two d x 4d (biases aside)
    assert sum(p.numel() for p in SwiGLU(576).parameters()) == 2 * 576 * 4 * 576


def test_rotary_equals_transformers_and_scores_depend_on_the_offset_only():
    config = _their_config(hidden_size=48, num_attention_heads=6)  # d_head 8
    positions = torch.tensor([[0, 1, 2, 7, 30], [3, 3, 4, 5, 6]])
    q, k = _x(2, 6, 5, 8, seed=1), _x(2, 6, 5, 8, seed=2)
    cos, sin = ml.LlamaRotaryEmbedding(config)(q, positions)
    their_q, their_k = ml.apply_rotary_pos_emb(q, k, cos, sin)
    our_cos, our_sin = rotary_angles(positions, 8, 500.0)
    torch.testing.assert_close(rotate(q, our_cos, our_sin), their_q, atol=1e-6, rtol=0)
    torch.testing.assert_close(rotate(k, our_cos, our_sin), their_k, atol=1e-6, rtol=0)
    # q at position m, k at position n: the score q_m^T k_n is the same for every (m, n) with the same m - n
    qv, kv = _x(8, seed=3), _x(8, seed=4)

    def score(m, n):
        cq, sq = rotary_angles(torch.tensor([[m]]), 8, 500.0)
        ck, sk = rotary_angles(torch.tensor([[n]]), 8, 500.0)
        return (rotate(qv.view(1, 1, 1, 8), cq, sq) * rotate(kv.view(1, 1, 1, 8), ck, sk)).sum().item()

    assert score(5, 2) == pytest.approx(score(103, 100), abs=1e-4)
    assert score(5, 2) != pytest.approx(score(5, 3), abs=1e-3)


@pytest.mark.parametrize("n_kv_heads", [1, 2, 6])
def test_grouped_query_attention_equals_llama_attention(n_kv_heads):
    config = _their_config(num_key_value_heads=n_kv_heads)
    torch.manual_seed(n_kv_heads)
    theirs = ml.LlamaAttention(config, layer_idx=0).eval()
    ours = MultiHeadAttention(48, 6, bias=False, n_kv_heads=n_kv_heads, rope_theta=500.0)
    ours.load_state_dict({f"{p}.weight": getattr(theirs, t).weight for p, t in
                          (("q_proj", "q_proj"), ("k_proj", "k_proj"), ("v_proj", "v_proj"), ("out_proj", "o_proj"))})
    assert ours.k_proj.weight.shape == (n_kv_heads * 8, 48)  # fewer key/value heads, fewer weights
    x, positions = _x(2, 7, 48), torch.arange(7).expand(2, 7)
    causal = torch.ones(7, 7, dtype=torch.bool).tril()
    additive = torch.zeros(7, 7).masked_fill(~causal, float("-inf"))[None, None]
    y, alpha = theirs(x, ml.LlamaRotaryEmbedding(config)(x, positions), additive)
    our_y, our_alpha = ours(x, mask=causal, rotary=rotary_angles(positions, 8, 500.0))
    torch.testing.assert_close(our_y, y, atol=1e-5, rtol=0)
    torch.testing.assert_close(our_alpha, alpha, atol=1e-6, rtol=0)


def test_llama_layer_equals_llama_decoder_layer():
    config = _their_config()
    torch.manual_seed(3)
    theirs = ml.LlamaDecoderLayer(config, layer_idx=0).eval()
    ours = LlamaLayer(48, 6, 2, 80, eps=1e-6, rope_theta=500.0)
    names = {"norm1": "input_layernorm", "attn.q_proj": "self_attn.q_proj", "attn.k_proj": "self_attn.k_proj",
             "attn.v_proj": "self_attn.v_proj", "attn.out_proj": "self_attn.o_proj",
             "norm2": "post_attention_layernorm", "ffn.w1": "mlp.gate_proj", "ffn.w3": "mlp.up_proj",
             "ffn.w2": "mlp.down_proj"}
    state = theirs.state_dict()
    ours.load_state_dict({f"{o}.weight": state[f"{t}.weight"] + 0.0 for o, t in names.items()})
    x, positions = _x(2, 7, 48), torch.arange(7).expand(2, 7)
    causal = torch.ones(7, 7, dtype=torch.bool).tril()
    additive = torch.zeros(7, 7).masked_fill(~causal, float("-inf"))[None, None]
    y = theirs(x, additive, positions, position_embeddings=ml.LlamaRotaryEmbedding(config)(x, positions))
    torch.testing.assert_close(ours(x, causal, rotary=rotary_angles(positions, 8, 500.0))[0], y, atol=1e-5, rtol=0)


# ---------------------------------------------------------------- the whole model, on random configurations


@pytest.mark.parametrize("seed, extra", [(0, {}), (1, dict(tie_word_embeddings=False, num_key_value_heads=3)),
                                         (2, dict(num_key_value_heads=1, rope_theta=10_000.0))])
def test_llama_both_ways_with_left_padding(seed, extra):
    theirs = _llama(seed, **extra)
    ours = decoder_from_llama(theirs)
    back = decoder_to_llama(ours)
    ids, mask, position_ids = _left_padded_batch()
    real = mask.bool()  # padded queries attend to nothing in ours, to masked keys in transformers
    with torch.no_grad():
        expected = theirs(ids, attention_mask=mask, position_ids=position_ids).logits
        for model in (ours, back):
            logits = model(ids, attention_mask=mask, position_ids=position_ids).logits
            assert (logits - expected)[real].abs().max().item() <= 1e-4
    assert ours.config.tie_embeddings == theirs.config.tie_word_embeddings
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters())


def test_random_llama_to_transformers_and_back():
    ours = LlamaDecoder(V, d_model=64, n_heads=8, n_kv_heads=2, n_layers=3, rope_theta=1000.0, max_len=64)
    ids = _left_padded_batch()[0]
    with torch.no_grad():
        expected = ours(ids).logits
        assert (decoder_to_llama(ours)(ids).logits - expected).abs().max().item() <= 1e-4
        assert (decoder_from_llama(decoder_to_llama(ours))(ids).logits - expected).abs().max().item() <= 1e-4


def test_kv_cache_equals_one_full_pass_and_caches_only_the_shared_heads():
    ours = decoder_from_llama(_llama(0))
    ids = _left_padded_batch()[0]
    cache = KVCache()
    with torch.no_grad():
        full = ours(ids).logits
        steps = [ours(ids[:, :6], cache=cache).logits] + [ours(ids[:, i:i + 1], cache=cache).logits
                                                         for i in range(6, ids.shape[1])]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=0)
    assert cache[0].keys.shape == (3, 2, ids.shape[1], 8)  # (B, n_kv_heads, T, d_head): 2 heads cached, not 6


@pytest.mark.parametrize("options", [
    dict(), dict(num_beams=4), dict(num_beams=3, length_penalty=0.5, early_stopping=True),
    dict(eos_token_id=5), dict(no_repeat_ngram_size=2),
])
def test_generate_is_token_identical_to_transformers(options):
    theirs = _llama(0)
    ours = decoder_from_llama(theirs)
    ids, mask, _ = _left_padded_batch(6)
    expected = theirs.generate(ids, attention_mask=mask, max_new_tokens=12, do_sample=False, pad_token_id=0,
                               **options)
    for model in (ours, theirs):  # our generate on our model and on transformers' model
        got = generate(model, ids, 12, attention_mask=mask, pad_token_id=0, **options)
        assert torch.equal(got, expected), options


def test_sampling_under_one_seed_is_token_identical_to_transformers():
    theirs = _llama(1)
    ours = decoder_from_llama(theirs)
    ids, mask, _ = _left_padded_batch(6)
    torch.manual_seed(7)
    expected = theirs.generate(ids, attention_mask=mask, max_new_tokens=15, do_sample=True, temperature=0.8,
                               top_k=20, top_p=0.9, pad_token_id=0)
    for model in (ours, theirs):
        torch.manual_seed(7)
        got = generate(model, ids, 15, attention_mask=mask, do_sample=True, temperature=0.8, top_k=20, top_p=0.9,
                       pad_token_id=0)
        assert torch.equal(got, expected)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("call, error, match", [
    (lambda: LlamaConfig(V, d_model=48, n_heads=6, n_kv_heads=4), ValueError, "multiple of n_kv_heads"),
    (lambda: LlamaConfig(V, n_kv_heads=0), ValueError, "n_kv_heads"),
    (lambda: LlamaConfig(V, rope_theta=-1.0), ValueError, "rope_theta"),
    (lambda: LlamaConfig(V, tie_embeddings="yes"), TypeError, "tie_embeddings"),
    (lambda: MultiHeadAttention(12, 4, rope_theta=10.0), ValueError, "d_head = 3 must be even"),
    (lambda: MultiHeadAttention(48, 6, n_kv_heads=4), ValueError, "n_heads by n_kv_heads"),
    (lambda: MultiHeadAttention(48, 6, rope_theta=10.0)(_x(1, 3, 48), _x(1, 2, 48)), ValueError, "cross-attention"),
    (lambda: MultiHeadAttention(48, 6, rope_theta=10.0)(_x(1, 3, 48), rotary=rotary_angles(torch.zeros(1, 4), 8, 10.0)),
     ValueError, r"rotary must be \(cos, sin\) of shape"),
    (lambda: LlamaDecoder(V, max_len=8)(torch.zeros(1, 9, dtype=torch.long)), ValueError, "exceeds max_len=8"),
    (lambda: generate(LlamaDecoder(V, max_len=8), torch.zeros(1, 5, dtype=torch.long), 4), ValueError,
     "exceeds the model's 8 positions"),
    (lambda: decoder_from_llama(LlamaDecoder(V)), TypeError, "transformers.LlamaForCausalLM"),
    (lambda: decoder_to_llama(_llama(0)), TypeError, "course_utils LlamaDecoder"),
    (lambda: decoder_from_llama(_llama(0, hidden_act="gelu")), ValueError, "hidden_act"),
    (lambda: decoder_from_llama(_llama(0, attention_bias=True)), ValueError, "attention_bias"),
])
def test_bad_input_is_named(call, error, match):
    with pytest.raises(error, match=match):
        call()
