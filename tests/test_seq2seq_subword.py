"""Subword (WordPiece) vocabularies for selfsup-seq2seq: pieces, extended ids for words
WordPiece cannot spell, a checkpoint's tokenizer, folder round trips, and the copy head
copying pieces."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from selfsup.errors import InputError
from selfsup.modeling.seq2seq import SelfsupSeq2SeqConfig, SelfsupSeq2SeqForConditionalGeneration
from selfsup.seq2seq.subword import SubwordTokenizer, load_or_train_tokenizer
from selfsup.seq2seq.tokenizer import WordTokenizer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))
from tiny_corpus import CORPUS, word_level_tokenizer  # noqa: E402

TEXTS = ["Hi , I am Kuroro .", "Nice to meet you , Kuroro .", "Hello , my name is Dabaka ."] * 3


def test_pieces_and_extended_ids_for_words_wordpiece_cannot_spell():
    tok = SubwordTokenizer.train(TEXTS, 60, min_frequency=1)
    assert (tok.bos_id, tok.eos_id, tok.pad_id, tok.unk_id) == (2, 3, 0, 1) and tok.mask_id is not None
    pieces = tok.words("I am Kubaro")
    assert pieces[:2] == ["I", "am"] and len(pieces) > 3 and all(p.startswith("##") for p in pieces[3:])
    # 'ß' and '☃' never occur in the training text: each word holding one is [UNK] to the encoder
    src = tok.encode_source("I am Kußaro ☃ .")
    assert src.oovs == ["Kußaro", "☃"]
    assert src.input_ids[2:4] == [tok.unk_id, tok.unk_id]
    assert src.extended_ids[2:4] == [len(tok), len(tok) + 1]
    target = tok.encode_target("Hi ☃ Kußaro , Zyx", src.oovs)
    assert target[1:3] == [len(tok) + 1, len(tok)] and target[-2] == tok.unk_id  # Zyx is in no source: [UNK]
    assert tok.decode(target, src.oovs) == "Hi ☃ Kußaro, [UNK]"
    # what the model writes is what scores compare against: decode(encode(text)) == normalize(text)
    text = "Nice to meet you , Kubaro ."
    assert tok.decode(tok.encode_target(text)) == tok.normalize(text) == "Nice to meet you, Kubaro."


def test_folders_load_as_the_tokenizer_they_hold(tmp_path):
    sub = SubwordTokenizer.train(TEXTS, 60, min_frequency=1)
    sub.save_pretrained(tmp_path / "sub")
    word = WordTokenizer.train(TEXTS, 50)
    word.save_pretrained(tmp_path / "word")
    loaded_sub = WordTokenizer.from_pretrained(tmp_path / "sub")
    loaded_word = WordTokenizer.from_pretrained(tmp_path / "word")
    assert type(loaded_sub) is SubwordTokenizer and type(loaded_word) is WordTokenizer
    assert loaded_sub.encode_source("I am Kubaro") == sub.encode_source("I am Kubaro")
    assert loaded_word.words("I am Kubaro") == ["I", "am", "Kubaro"]


def test_a_bert_checkpoint_tokenizer_serves_with_cls_and_sep_as_start_and_end(tmp_path):
    word_level_tokenizer(CORPUS).save_pretrained(tmp_path)  # BERT's specials, a WordPiece model, lower case
    tok = WordTokenizer.from_pretrained(tmp_path)
    assert isinstance(tok, SubwordTokenizer)
    assert tok.bos_id == tok.vocab["[CLS]"] and tok.eos_id == tok.vocab["[SEP]"]
    ids = tok.encode_target("The sky is blue.")
    # its normaliser lower-cases; it has no decoder, so pieces are joined by spaces
    assert ids[-1] == tok.eos_id and tok.decode(ids) == tok.normalize("The sky is blue.") == "the sky is blue ."


def test_unknown_tokenizer_type_is_refused():
    with pytest.raises(InputError, match="tokenizer_type.*word, wordpiece.*'bpe'"):
        load_or_train_tokenizer(None, "bpe", TEXTS, 60, 1)


def test_the_copy_head_puts_copy_mass_on_every_source_piece():
    tok = SubwordTokenizer.train(TEXTS, 60, min_frequency=1)
    src = tok.encode_source("I am Kubaro ☃")
    torch.manual_seed(0)
    model = SelfsupSeq2SeqForConditionalGeneration(SelfsupSeq2SeqConfig(
        vocab_size=len(tok), hidden_size=16, num_hidden_layers=1, num_decoder_layers=1, num_attention_heads=2,
        intermediate_size=32, use_copy=True)).eval()
    with torch.no_grad():
        model.copy_head.p_gen.bias.fill_(-30.0)  # p_gen ~ 0: the output is the copy distribution alone
        out = model(input_ids=torch.tensor([src.input_ids]), source_extended_ids=torch.tensor([src.extended_ids]),
                    decoder_input_ids=torch.tensor([[tok.bos_id]]))
    probs = out.logits[0, -1].exp()
    # every source piece (and the extended id of the unspellable word) can be produced, nothing else
    assert set((probs > 1e-6).nonzero().squeeze(1).tolist()) == set(src.extended_ids)
    assert probs.sum().item() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.slow
def test_a_tiny_copy_model_learns_the_names_task_on_subwords(tmp_path):
    """The names task (tests/test_seq2seq_names.py) with WordPiece pieces instead of words:
    held-out names are spelled with pieces seen in other names, and the model must copy
    them piece by piece."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import train_seq2seq

    from selfsup.tasks import names
    files = names.write(tmp_path / "data", n_train=800, n_test=60, seed=0)
    out = tmp_path / "run"
    summary = train_seq2seq.main([
        "--config", str(ROOT / "configs/seq2seq/names-tiny.yaml"), "--copy", "--tokenizer_type", "wordpiece",
        "--vocab_size", "200", "--train_file", str(files["train"]), "--test_file", str(files["test"]),
        "--max_steps", "300", "--cpu_threads", "1", "--output_dir", str(out)])
    tok = WordTokenizer.from_pretrained(out)
    assert isinstance(tok, SubwordTokenizer)
    test_names = [json.loads(line)["name"] for line in files["test"].read_text().splitlines()]
    split = sum(len(tok.words(n)) > 1 for n in test_names)
    assert split >= 0.9 * len(test_names)  # names are copied as several pieces, not as one
    assert summary["test"]["exact_match"] >= 0.95, summary["test"]
