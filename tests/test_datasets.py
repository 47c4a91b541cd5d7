"""From the corpus to batches: BERT's NSP batches, GPT's windows, BART's noisy batches (passages: test_finetune)."""

import pytest
import torch

from course_utils.data import BPE_SPECIAL_TOKENS, load_bpe, load_play
from course_utils.datasets import (
    BART_NOISE, Passage, bart_documents, bert_documents, collate, encode, gpt_batches, gpt_stream, noisy_batch,
    nsp_dataset, play_passages,
)
from course_utils.objectives import IGNORE_INDEX, NSPInstance


def test_collate_pads_and_masks():
    batch = collate([NSPInstance([2, 9, 3, 8, 3], [0, 0, 0, 1, 1], 0),
                     NSPInstance([2, 9, 3, 8, 8, 8, 3], [0] * 3 + [1] * 4, 1)])
    assert batch["input_ids"].tolist() == [[2, 9, 3, 8, 3, 0, 0], [2, 9, 3, 8, 8, 8, 3]]
    assert batch["token_type_ids"].tolist() == [[0, 0, 0, 1, 1, 0, 0], [0, 0, 0, 1, 1, 1, 1]]
    assert batch["attention_mask"].sum(1).tolist() == [5, 7]
    assert batch["next_sentence_label"].tolist() == [0, 1]
    assert all(t.dtype == torch.long for t in batch.values())


def test_nsp_dataset_is_seeded_and_fits_max_seq_length():
    documents = bert_documents("validation")[:2]
    instances = nsp_dataset(documents, max_seq_length=32, dupe_factor=2, seed=1)
    assert instances == nsp_dataset(documents, max_seq_length=32, dupe_factor=2, seed=1)
    assert all(len(x.input_ids) <= 32 for x in instances)


def test_bart_documents_are_runs_of_whole_sentences():
    chunks = bart_documents("validation", max_tokens=32)
    assert all(c[0] == 0 and c[-1] == 2 and len(c) <= 32 for c in chunks)
    text = load_bpe().decode(chunks[0][1:-1].tolist())
    assert text.rstrip()[-1] in ".!?", text  # a run ends where a sentence ends, never mid-sentence


def test_gpt_batches_are_seeded_windows_of_the_stream():
    stream = gpt_stream("validation")
    assert stream[0] == BPE_SPECIAL_TOKENS.index("<s>") and stream.dtype == torch.long
    batches = [next(gpt_batches(stream, 4, 16, torch.Generator().manual_seed(0))) for _ in range(2)]
    assert batches[0].shape == (4, 17) and torch.equal(batches[0], batches[1])  # seeded
    windows = stream.unfold(0, 17, 1)  # (N - 16, 17): every window of the stream
    assert all((windows == row).all(1).any() for row in batches[0])


def test_noisy_batch_pairs_the_corrupted_source_with_the_original():
    chunks = bart_documents("validation")[:5]
    batch = noisy_batch(chunks, BART_NOISE, torch.Generator().manual_seed(0))
    pad, mask = BPE_SPECIAL_TOKENS.index("<pad>"), BPE_SPECIAL_TOKENS.index("<mask>")
    assert torch.equal(batch["attention_mask"], (batch["input_ids"] != pad).long())
    for chunk, labels, source in zip(chunks, batch["labels"], batch["input_ids"]):
        assert torch.equal(labels[: len(chunk)], chunk) and (labels[len(chunk):] == IGNORE_INDEX).all()
        assert (source == mask).any()


def test_the_old_import_paths_still_work():
    from course_utils import finetune, pretrain

    assert pretrain.collate is collate and pretrain.noisy_batch is noisy_batch and pretrain.gpt_stream is gpt_stream
    assert finetune.encode is encode


_STREAM = torch.arange(100)
_G = torch.Generator().manual_seed(0)


@pytest.mark.parametrize("call, error, match", [
    (lambda: bert_documents("dev"), ValueError, "split must be one of"),
    (lambda: bert_documents(["train"]), ValueError, "split must be one of"),
    (lambda: nsp_dataset([[[5]]], max_seq_length=32, dupe_factor=0, seed=0), ValueError, "dupe_factor must be >= 1"),
    (lambda: nsp_dataset([[[5]]], max_seq_length=32, dupe_factor=1, seed=-3), ValueError, "seed must be >= 0"),
    (lambda: nsp_dataset([[[5]]], max_seq_length=2, dupe_factor=1, seed=0), ValueError, "max_seq_length must be >= 5"),
    (lambda: collate([]), TypeError, "instances must be a non-empty list of NSPInstance"),
    (lambda: collate(NSPInstance([2, 3], [0, 0], 0)), TypeError, "instances must be a non-empty list"),
    (lambda: collate([NSPInstance([2, 3], [0, 0], 0)], pad_id=-1), ValueError, "pad_id must be >= 0"),
    (lambda: gpt_stream("dev"), ValueError, "split must be one of"),
    (lambda: gpt_batches(_STREAM, 0, 16, _G), ValueError, "batch_size must be >= 1"),
    (lambda: gpt_batches(_STREAM, 4, 99, _G), ValueError, "block_size must be <= 98, got 99"),
    (lambda: gpt_batches(_STREAM.float(), 4, 16, _G), TypeError, "stream must be an integer tensor"),
    (lambda: gpt_batches(_STREAM, 4, 16, 0), TypeError, "generator must be a Generator"),
    (lambda: bart_documents("test", max_tokens=2), ValueError, "max_tokens must be >= 3"),
    (lambda: noisy_batch([], BART_NOISE, _G), TypeError, "chunks must be a non-empty list"),
    (lambda: noisy_batch([torch.tensor([0, 9, 2])], {"mask_ratio": 0.3}, _G), ValueError,
     r"recipe must hold mask_ratio and poisson_lambda, missing \['poisson_lambda'\]"),
    (lambda: noisy_batch([torch.tensor([0, 9, 2])], dict(BART_NOISE, poisson_lambda=1e-6), _G), ValueError,
     "poisson_lambda must be in"),
    (lambda: noisy_batch([torch.tensor([0, 9, 2])], dict(BART_NOISE, mask_ratio=2), _G), ValueError, "mask_ratio"),
    # issue 17, second audit
    (lambda: bert_documents("test", "x"), TypeError, r"tokenizer must be a tokenizers.Tokenizer .* or None, got str"),
    (lambda: nsp_dataset([], max_seq_length=32, dupe_factor=1, seed=0), ValueError,
     "documents must hold at least one document"),
    (lambda: nsp_dataset([[[5]]], max_seq_length=32, dupe_factor=1, seed=0, tokenizer="x"), TypeError,
     "tokenizer must be a tokenizers.Tokenizer"),
    (lambda: gpt_batches(_STREAM, 10**9, 16, _G), ValueError, "batch_size must be <= 65536"),
    (lambda: noisy_batch([torch.ones(2, 3, dtype=torch.long)], BART_NOISE, _G), ValueError,
     r"chunks\[0\] must have 1 dimensions"),
    (lambda: noisy_batch([torch.tensor([0, 9, 2]).float()], BART_NOISE, _G), TypeError,
     r"chunks\[0\] must be an integer tensor"),
    (lambda: noisy_batch([torch.tensor([0, 9000, 2])], BART_NOISE, _G), ValueError,
     r"chunks\[0\] must lie in \[0, 8000\)"),
    (lambda: noisy_batch([torch.tensor([0, 9, 2], dtype=torch.int32)], BART_NOISE, _G), TypeError,
     r"chunks\[0\] must be a LongTensor"),
    (lambda: noisy_batch([torch.tensor([0, 9, 2])], BART_NOISE, "g"), TypeError, "generator must be a torch.Generator"),
    (lambda: play_passages(load_play("hamlet"), tokenizer="x"), TypeError, "tokenizer must be a tokenizers.Tokenizer"),
    (lambda: encode([Passage("p", "comedies", "t", (5, 6))], tokenizer="x"), TypeError,
     "tokenizer must be a transformers tokenizer or None"),
])
def test_bad_input_raises(call, error, match):
    with pytest.raises(error, match=match):
        call()
