"""Pretraining data: NSP pairs as google-research/bert builds them, SOP pairs as ALBERT does,
single segments, masking statistics."""
from __future__ import annotations

import collections

import pytest
import torch
from datasets import Dataset
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from selfsup.errors import InputError
from selfsup.pretrain.corpus import read_documents, stdlib_docstrings
from selfsup.pretrain.data import build_pretraining_data
from selfsup.pretrain.instances import (
    IN_ORDER,
    IS_NEXT,
    IS_RANDOM,
    SWAPPED,
    InstanceConfig,
    build_instances,
    tokenize_documents,
)
from selfsup.pretrain.masking import MaskingCollator
from selfsup.pretrain.tokenizer import train_wordpiece


@pytest.fixture(scope="module")
def wikitext(shared_data):
    return shared_data / "wikitext" / "wikitext-2" / "wiki.valid.tokens"


@pytest.fixture(scope="module")
def wiki_docs(wikitext):
    return read_documents(wikitext, "wikitext")  # a validation split, read on purpose: not a --corpus


@pytest.fixture(scope="module")
def wordpiece(wiki_docs):
    return train_wordpiece((" ".join(d) for d in wiki_docs), vocab_size=4000)


@pytest.fixture(scope="module")
def byte_bpe(wiki_docs):
    """A second tokenizer family: GPT-2-style byte-level BPE (no ## continuation marks)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.train_from_iterator((" ".join(d) for d in wiki_docs), trainers.BpeTrainer(
        vocab_size=4000, special_tokens=["<pad>", "<s>", "</s>", "<mask>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", cls_token="<s>", sep_token="</s>",
                                   mask_token="<mask>", unk_token="<unk>")


def instances_for(docs, tokenizer, **config):
    tokenized = tokenize_documents(Dataset.from_dict({"sentences": docs}), tokenizer)
    return build_instances(tokenized, tokenizer, InstanceConfig(**config)), tokenized


@pytest.fixture(scope="module")
def wiki_instances(wiki_docs, wordpiece):
    return instances_for(wiki_docs, wordpiece, max_seq_length=128)


def test_wikitext_articles_are_documents(wiki_docs):
    assert len(wiki_docs) == 60  # WikiText-2 validation has 60 articles
    assert all(len(d) > 10 for d in wiki_docs)


def test_nsp_labels_are_balanced(wiki_instances):
    instances, _ = wiki_instances
    labels = collections.Counter(instances["next_sentence_label"])
    share = labels[IS_RANDOM] / len(instances)
    assert len(instances) > 2000 and abs(share - 0.5) < 0.03, labels


def test_is_next_pairs_are_consecutive_and_random_pairs_come_from_another_document(wiki_instances):
    instances, tokenized = wiki_instances
    for row in instances:
        doc, a_start, a_end, b_doc, b_start, b_end = row["source"]
        assert a_start < a_end <= len(tokenized[doc]["tokens"])
        if row["next_sentence_label"] == IS_NEXT:
            assert (b_doc, b_start) == (doc, a_end), "B must continue A in the same document"
        else:
            assert b_doc != doc


def test_sequences_fit_and_are_shaped_like_bert_inputs(wiki_instances, wordpiece):
    instances, _ = wiki_instances
    lengths = [len(ids) for ids in instances["input_ids"]]
    assert max(lengths) <= 128 and min(lengths) >= 5
    assert sum(length < 100 for length in lengths) > 0.05 * len(lengths)  # short_seq_prob makes some short
    for row in instances.select(range(50)):
        ids, types = row["input_ids"], row["token_type_ids"]
        assert ids[0] == wordpiece.cls_token_id and ids[-1] == wordpiece.sep_token_id
        first_sep = ids.index(wordpiece.sep_token_id)
        assert types == [0] * (first_sep + 1) + [1] * (len(ids) - first_sep - 1)
        assert [i for i, w in enumerate(row["word_ids"]) if w == -1] == [0, first_sep, len(ids) - 1]


def test_instances_are_deterministic_and_independent_of_num_proc(wiki_docs, wordpiece):
    docs = wiki_docs[:12]
    a, _ = instances_for(docs, wordpiece, max_seq_length=64, seed=3)
    b, _ = instances_for(docs, wordpiece, max_seq_length=64, seed=3)
    c, _ = instances_for(docs, wordpiece, max_seq_length=64, seed=4)
    tokenized = tokenize_documents(Dataset.from_dict({"sentences": docs}), wordpiece)
    d = build_instances(tokenized, wordpiece, InstanceConfig(max_seq_length=64, seed=3), num_proc=2)
    assert a["input_ids"] == b["input_ids"] == d["input_ids"]
    assert a["input_ids"] != c["input_ids"]


def test_no_sentence_objective_gives_single_segment_sequences(wiki_docs, wordpiece):
    instances, tokenized = instances_for(wiki_docs[:5], wordpiece, max_seq_length=64, sentence_objective="none")
    assert "next_sentence_label" not in instances.column_names
    assert all(set(t) == {0} for t in instances["token_type_ids"])
    assert all(ids.count(wordpiece.sep_token_id) == 1 and ids[-1] == wordpiece.sep_token_id
               for ids in instances["input_ids"])
    # Every sentence of every document is used, each once, in order.
    spans = [row[:3] for row in instances["source"]]
    assert all(row[3:] == [-1, -1, -1] for row in instances["source"])
    for doc in range(5):
        mine = [(start, end) for d, start, end in spans if d == doc]
        assert mine[0][0] == 0 and mine[-1][1] == len(tokenized[doc]["tokens"])
        assert all(a[1] == b[0] for a, b in zip(mine, mine[1:]))


@pytest.fixture(scope="module")
def sop_instances(wiki_docs, wordpiece):
    return instances_for(wiki_docs, wordpiece, max_seq_length=128, sentence_objective="sop")


def test_sop_pairs_are_consecutive_segments_of_one_document_in_or_out_of_order(sop_instances):
    instances, tokenized = sop_instances
    for row in instances:
        doc, first_start, first_end, second_doc, second_start, second_end = row["source"]
        assert second_doc == doc, "SOP never takes a segment from another document"
        assert first_start < first_end <= len(tokenized[doc]["tokens"]) and second_start < second_end
        if row["next_sentence_label"] == IN_ORDER:
            assert second_start == first_end, "in order: the second segment continues the first"
        else:
            assert row["next_sentence_label"] == SWAPPED
            assert second_end == first_start, "swapped: the second segment is the one that came before"


def test_sop_swaps_half_of_the_pairs(sop_instances):
    instances, _ = sop_instances
    n = len(instances)
    swapped = sum(label == SWAPPED for label in instances["next_sentence_label"])
    # Binomial(n, 0.5): 4 standard deviations, about 1 failure in 16,000 seeds.
    assert n > 1500 and abs(swapped / n - 0.5) < 4 * (0.25 / n) ** 0.5, (swapped, n)


def test_sop_sequences_are_bert_pairs_holding_the_sentences_their_source_names(sop_instances, wordpiece):
    instances, tokenized = sop_instances
    doc_tokens = tokenized["tokens"]
    for row in instances.select(range(300)):
        ids, types = row["input_ids"], row["token_type_ids"]
        assert len(ids) <= 128 and ids[0] == wordpiece.cls_token_id and ids[-1] == wordpiece.sep_token_id
        sep = ids.index(wordpiece.sep_token_id)
        assert 1 < sep < len(ids) - 2, "both segments are non-empty"
        assert types == [0] * (sep + 1) + [1] * (len(ids) - sep - 1)
        doc, first_start, first_end, _, second_start, second_end = row["source"]
        first = [t for sentence in doc_tokens[doc][first_start:first_end] for t in sentence]
        second = [t for sentence in doc_tokens[doc][second_start:second_end] for t in sentence]
        # Truncation trims the ends of a segment only, so each is a contiguous piece of its sentences
        # (which, for a swapped pair, puts the later text first).
        assert _contains(first, ids[1:sep]) and _contains(second, ids[sep + 1:-1])


def test_sop_instances_are_deterministic_and_independent_of_num_proc(wiki_docs, wordpiece):
    docs = wiki_docs[:12]
    a, tokenized = instances_for(docs, wordpiece, max_seq_length=64, seed=3, sentence_objective="sop")
    b = build_instances(tokenized, wordpiece, InstanceConfig(max_seq_length=64, seed=3, sentence_objective="sop"),
                        num_proc=2)
    assert a.to_dict() == b.to_dict()


def test_sop_needs_no_second_document(wordpiece):
    one = [["The first sentence is here.", "A second one follows it.", "Then a third.", "And a last one."]]
    instances, _ = instances_for(one, wordpiece, max_seq_length=16, sentence_objective="sop")
    assert len(instances) > 0 and {row[3] for row in instances["source"]} == {0}
    with pytest.raises(InputError, match="at least 2 documents"):
        instances_for(one, wordpiece, max_seq_length=16, sentence_objective="nsp")


@pytest.mark.parametrize("settings, field", [
    (dict(sentence_objective="nsp", nsp_probability=0.0), "nsp_probability"),  # once "NSP off": now an error
    (dict(sentence_objective="sop", nsp_probability=1.0), "nsp_probability"),
    (dict(sentence_objective="mlm"), "sentence_objective"),
])
def test_settings_that_make_the_sentence_task_meaningless_are_refused(settings, field):
    with pytest.raises(InputError, match=field):
        InstanceConfig(**settings)


def _contains(sequence: list, part: list) -> bool:
    return any(sequence[i:i + len(part)] == part for i in range(len(sequence) - len(part) + 1))


def _mask_many(tokenizer, docs, whole_word: bool, **kwargs):
    instances, _ = instances_for(docs, tokenizer, max_seq_length=128)
    collator = MaskingCollator.for_tokenizer(tokenizer, whole_word_mask=whole_word,
                                             generator=torch.Generator().manual_seed(0), **kwargs)
    rows = [instances[i] for i in range(len(instances))]
    batch = collator(rows)
    word_ids = torch.full_like(batch["input_ids"], -1)
    originals = torch.full_like(batch["input_ids"], tokenizer.pad_token_id)
    for i, r in enumerate(rows):
        word_ids[i, :len(r["word_ids"])] = torch.tensor(r["word_ids"])
        originals[i, :len(r["input_ids"])] = torch.tensor(r["input_ids"])
    return batch, word_ids, originals


@pytest.mark.parametrize("family", ["wordpiece", "byte_bpe"])
@pytest.mark.parametrize("whole_word", [False, True])
def test_masking_statistics(request, wiki_docs, family, whole_word):
    tokenizer = request.getfixturevalue(family)
    batch, word_ids, originals = _mask_many(tokenizer, wiki_docs, whole_word)
    candidates = (word_ids >= 0) & ~torch.isin(originals, torch.tensor(tokenizer.all_special_ids))
    chosen = batch["labels"] != -100
    n = int(candidates.sum())
    assert n > 100_000
    assert not (chosen & ~candidates).any(), "special tokens and padding are never chosen"
    assert torch.equal(batch["labels"][chosen], originals[chosen])
    rate = chosen.sum().item() / n
    assert abs(rate - 0.15) < (0.005 if not whole_word else 0.01), rate
    ids = batch["input_ids"][chosen]
    as_mask = (ids == tokenizer.mask_token_id).float().mean().item()
    unchanged = (ids == originals[chosen]).float().mean().item()
    assert abs(as_mask - 0.8) < 0.01 and abs(unchanged - 0.1) < 0.01, (as_mask, unchanged)
    assert not torch.isin(ids, torch.tensor(tokenizer.all_special_ids)).logical_and(
        ids != tokenizer.mask_token_id).any(), "random replacements are ordinary tokens"
    if whole_word:
        # Every word is masked entirely or not at all.
        for i in range(word_ids.shape[0]):
            for w in word_ids[i][candidates[i]].unique():
                in_word = chosen[i][word_ids[i] == w]
                assert in_word.all() or not in_word.any()
        multi_piece = sum(1 for i in range(word_ids.shape[0])
                          for w, c in zip(*word_ids[i][chosen[i]].unique(return_counts=True)) if c > 1)
        assert multi_piece > 100  # the property was exercised on words of several pieces


def test_max_predictions_per_seq_caps_without_splitting_words(wiki_docs, wordpiece):
    batch, word_ids, _ = _mask_many(wordpiece, wiki_docs[:10], True, max_predictions_per_seq=5,
                                    mlm_probability=0.5)
    chosen = batch["labels"] != -100
    assert chosen.sum(1).max() <= 5 and chosen.sum(1).float().mean() > 3
    for i in range(word_ids.shape[0]):
        for w in word_ids[i][chosen[i]].unique():
            assert chosen[i][word_ids[i] == w].all()


def test_paragraph_layout_splits_paragraphs_into_sentences_and_documents_at_blank_lines(tmp_path, shared_data):
    path = tmp_path / "docs.txt"
    path.write_text("Intro. It has two sentences.\nA second paragraph!\n\nAnother document? Yes.\n")
    assert read_documents(path, "paragraphs") == [["Intro.", "It has two sentences.", "A second paragraph!"],
                                                  ["Another document?", "Yes."]]
    docs = read_documents(shared_data / "pretrain" / "python-docs.txt", "paragraphs")
    # the data README: 480 documents, about 1.02M words
    assert len(docs) == 480 and 1.0e6 < sum(len(s.split()) for d in docs for s in d) < 1.05e6


def test_stdlib_corpus_is_real_multi_sentence_text():
    docs = stdlib_docstrings()
    assert len(docs) > 2000 and all(len(d) >= 2 for d in docs)
    assert sum(len(" ".join(d).split()) for d in docs) > 100_000


@pytest.mark.parametrize("content,message", [
    (None, "corpus file not found"),
    (b"", "corpus is empty"),
    (b"\n\n   \n", "corpus is empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary file"),
    (b"good line\n\xff\xfe bad bytes\n", "not valid UTF-8"),
])
def test_bad_corpus_files_are_rejected_naming_the_file(tmp_path, content, message):
    path = tmp_path / "corpus.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=message) as err:
        read_documents(path)
    assert str(path) in str(err.value)


def test_utf8_error_names_the_line(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_bytes(b"one\ntwo\n\xff three\n")
    with pytest.raises(InputError, match=r"corpus.txt:3"):
        read_documents(path)


def test_a_corpus_too_small_for_any_pair_is_rejected_naming_it(tmp_path, wordpiece):
    path = tmp_path / "one_doc.txt"
    path.write_text("Only one document.\nWith two sentences.\n")
    with pytest.raises(InputError, match="at least 2 documents") as err:
        build_pretraining_data(str(path), wordpiece, InstanceConfig(), eval_documents=0)
    assert str(path) in str(err.value)


def test_training_the_tokenizer_twice_gives_the_same_tokenizer(wiki_docs, wordpiece):
    # tokenizers numbers "##" pieces in hash-map order and breaks merge ties by those numbers
    # (huggingface/tokenizers#1794): without train_wordpiece's fix, each run differs here.
    texts = [" ".join(d) for d in wiki_docs]
    again = train_wordpiece(texts, vocab_size=4000)
    assert again.backend_tokenizer.to_str() == wordpiece.backend_tokenizer.to_str()
    # The pieces declared up front to fix their ids are ordinary vocabulary, not special tokens.
    assert sorted(again.all_special_tokens) == ["[CLS]", "[MASK]", "[PAD]", "[SEP]", "[UNK]"]
    assert "##s" in again.get_vocab() and "##s" in again.tokenize("cats")[1:]
