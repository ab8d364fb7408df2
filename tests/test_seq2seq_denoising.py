"""Denoising pretraining of selfsup-seq2seq: chunks, the collator's (source, target)
pairs, and scripts/pretrain_seq2seq.py end to end (a tiny run, its folder fine-tuned by
scripts/train_seq2seq.py, and resume ≡ uninterrupted)."""
from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForSeq2SeqLM

import selfsup  # noqa: F401
from selfsup.errors import InputError
from selfsup.seq2seq.denoising import DenoisingChunks, DenoisingCollator, chunk_document
from selfsup.seq2seq.noising import NoiseConfig
from selfsup.seq2seq.subword import load_or_train_tokenizer
from selfsup.seq2seq.tokenizer import WordTokenizer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(ROOT / "scripts"))
from tiny_corpus import CORPUS  # noqa: E402

spec = importlib.util.spec_from_file_location("pretrain_seq2seq", ROOT / "scripts" / "pretrain_seq2seq.py")
pretrain_seq2seq = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pretrain_seq2seq)

DOCUMENTS = [doc.splitlines() for doc in CORPUS.split("\n\n")]
EVERY_NOISE = NoiseConfig(token_masking=0.1, token_deletion=0.1, text_infilling=0.3, sentence_permutation=1.0,
                          document_rotation=0.5)

# Tiny matrices gain nothing from intra-op threads (conftest.one_thread).
pytestmark = pytest.mark.usefixtures("one_thread")


def test_chunks_pack_whole_sentences_and_cut_long_ones():
    s = lambda n, base: list(range(base, base + n))  # noqa: E731
    assert chunk_document([s(3, 0), s(4, 10), s(2, 20)], 7) == [[s(3, 0), s(4, 10)], [s(2, 20)]]
    assert chunk_document([s(9, 0), s(1, 20)], 4) == [[s(4, 0)], [s(4, 4)], [s(1, 8), s(1, 20)]]
    assert chunk_document([], 4) == []


@pytest.mark.parametrize("kind, vocab_size", [("word", 1000), ("wordpiece", 80)])
def test_the_decoder_target_is_exactly_the_uncorrupted_text(kind, vocab_size):
    tokenizer = load_or_train_tokenizer(None, kind, [s for d in DOCUMENTS for s in d], vocab_size, 1, mask=True)
    chunks = DenoisingChunks(DOCUMENTS, tokenizer, max_tokens=16)
    collate = DenoisingCollator.for_tokenizer(tokenizer, EVERY_NOISE, seed=0)
    documents = [tokenizer.encode_source(" ".join(d)).input_ids for d in DOCUMENTS]
    assert all(i != tokenizer.unk_id for d in documents for i in d)
    if kind == "wordpiece":  # words really are cut into pieces, and some chunks cut inside a word
        assert any(tokenizer.id_to_word[i].startswith("##") for d in documents for i in d)
    changed = 0
    for epoch in range(3):
        collate.set_epoch(epoch)
        batch = collate([chunks[i] for i in range(len(chunks))])
        labels = [row[row != -100].tolist() for row in batch["labels"]]
        assert all(row[-1] == tokenizer.eos_id for row in labels)
        # the chunks of a document, targets joined, are the document's ids, and decode to its text
        position = 0
        for doc, text in zip(documents, DOCUMENTS):
            joined = []
            while len(joined) < len(doc):
                joined += labels[position][:-1]
                position += 1
            assert joined == doc
            assert tokenizer.decode(joined) == tokenizer.normalize(" ".join(text))
        assert position == len(chunks)
        sources = [row[row != tokenizer.pad_id].tolist() for row in batch["input_ids"]]
        changed += sum(s != t[:-1] for s, t in zip(sources, labels))
        assert any(tokenizer.mask_id in s for s in sources)
    assert changed == 3 * len(chunks)  # every source noised (each chunk has > 3 tokens: infilling masks >= 1)


def test_noise_is_a_function_of_seed_epoch_and_index_not_of_the_batch():
    tokenizer = WordTokenizer.train((s for d in DOCUMENTS for s in d), 1000, mask=True)
    chunks = DenoisingChunks(DOCUMENTS, tokenizer, max_tokens=16)
    collate = DenoisingCollator.for_tokenizer(tokenizer, EVERY_NOISE, seed=5)
    rows = [chunks[i] for i in range(len(chunks))]
    together = collate(rows[::-1])["input_ids"].flip(0)
    for i, row in enumerate(rows):
        alone = collate([row])["input_ids"][0]
        assert together[i, :len(alone)].tolist() == alone.tolist()
    collate.set_epoch(1)
    assert not torch.equal(collate(rows)["input_ids"][:, :8], together[:, :8])  # fresh noise every epoch


def test_oov_labels_are_copied_only_while_the_noised_source_holds_them():
    tokenizer = WordTokenizer.train(["a b c d"] * 3 + ["e f"], 9, mask=True)  # 5 specials + a b c d
    assert len(tokenizer) == 9
    chunks = DenoisingChunks([["a zed b c yon d"]], tokenizer, max_tokens=16)
    assert chunks[0]["sentences"] == [[tokenizer.vocab["a"], 9, tokenizer.vocab["b"], tokenizer.vocab["c"], 10,
                                       tokenizer.vocab["d"]]]
    assert chunks.oovs[0] == ["zed", "yon"]
    delete_all = NoiseConfig.parse("token_deletion=1")
    kept = NoiseConfig.parse("")
    for noise, copy, expected in ((kept, True, [9, 10]), (kept, False, [1, 1]), (delete_all, True, [1, 1])):
        ex = DenoisingCollator.for_tokenizer(tokenizer, noise, copy=copy).example(chunks[0]["sentences"], 0)
        assert [ex["labels"][1], ex["labels"][4]] == expected
        assert all(t < 9 for t in ex["input_ids"])  # the encoder never sees an extended id


def test_a_tokenizer_without_mask_is_refused():
    tokenizer = WordTokenizer.train(["a b c"], 20)
    with pytest.raises(InputError, match="no \\[MASK\\]"):
        DenoisingCollator.for_tokenizer(tokenizer, NoiseConfig())


TINY = ["--hidden_size", "32", "--num_hidden_layers", "1", "--num_decoder_layers", "1", "--num_attention_heads", "2",
        "--intermediate_size", "64", "--max_source_length", "16", "--min_frequency", "1",
        "--per_device_train_batch_size", "4", "--report_to", "none", "--cpu_threads", "1", "--logging_steps", "5"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("denoising") / "corpus.txt"
    path.write_text(CORPUS)
    return path


@pytest.fixture(scope="module")
def pretrained(corpus):
    out = corpus.parent / "run"
    summary = pretrain_seq2seq.main(["--corpus", str(corpus), "--output_dir", str(out), "--eval_documents", "1",
                                     "--max_steps", "150", "--learning_rate", "3e-3", "--eval_steps", "50",
                                     "--hidden_dropout_prob", "0", "--attention_probs_dropout_prob", "0", *TINY])
    return out, summary


def test_pretraining_learns_to_reconstruct_and_saves_a_fine_tunable_folder(pretrained, tmp_path):
    out, summary = pretrained
    evals = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if "eval/" in line]
    assert [e["step"] for e in evals] == [50, 100, 150]
    # held-out loss falls; the repeated facts make a reconstruction well above chance (1/vocab)
    assert evals[-1]["eval/reconstruction_loss"] < evals[0]["eval/reconstruction_loss"]
    assert summary["eval"]["reconstruction_accuracy"] > 0.3, summary["eval"]
    assert summary["eval"]["chunks"] == 2 and summary["noise"].startswith("text_infilling=0.3")

    model_dir = Path(summary["model_dir"])
    assert AutoModelForSeq2SeqLM.from_pretrained(model_dir).config.model_type == "selfsup-seq2seq"
    assert WordTokenizer.from_pretrained(model_dir).mask_id is not None
    # scripts/train_seq2seq.py starts from it, adding a copy head: with a zero learning rate the
    # pretrained weights are unchanged, and the copy head's are new
    import train_seq2seq
    rows = [{"src": f"the {w} of it", "tgt": w} for w in ("sky", "bell", "lemon", "ball")]
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tuned = tmp_path / "tuned"
    train_seq2seq.main(["--model_name_or_path", str(model_dir), "--train_file", str(data), "--max_steps", "2",
                        "--learning_rate", "0", "--output_dir", str(tuned), "--report_to", "none",
                        "--per_device_train_batch_size", "2", "--copy"])
    a, b = load_file(model_dir / "model.safetensors"), load_file(tuned / "model.safetensors")
    assert not AutoModelForSeq2SeqLM.from_pretrained(model_dir).config.use_copy
    assert AutoModelForSeq2SeqLM.from_pretrained(tuned).config.use_copy
    assert set(a) < set(b) and {"copy_head.query.weight", "copy_head.p_gen.weight"} <= set(b) - set(a)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resumed_pretraining_equals_the_uninterrupted_run(corpus, tmp_path):
    # dropout on, fresh noise every epoch; 10 training chunks at batch 4 = 3 batches an
    # epoch, so steps 7-12 after the resume cross two epoch boundaries
    args = ["--corpus", str(corpus), "--eval_documents", "1", "--max_steps", "12", "--save_steps", "6", *TINY]
    straight = pretrain_seq2seq.main([*args, "--output_dir", str(tmp_path / "a")])
    pretrain_seq2seq.main([*args, "--output_dir", str(tmp_path / "b")])
    shutil.rmtree(tmp_path / "b" / "model")
    resumed = pretrain_seq2seq.main([*args, "--output_dir", str(tmp_path / "b"), "--resume_from_checkpoint",
                                     str(tmp_path / "b" / "checkpoints" / "step-00000006")])
    assert resumed["train_chunks"] == 10 and resumed["epoch"] == straight["epoch"] == 4.0
    a = load_file(tmp_path / "a" / "model" / "model.safetensors")
    b = load_file(tmp_path / "b" / "model" / "model.safetensors")
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=0, rtol=0, msg=key)
    assert resumed["eval"] == straight["eval"]


@pytest.mark.parametrize("noise, message", [("text_infiling=0.3", "did you mean 'text_infilling'"),
                                            ("token_masking=1.5", "\\[0, 1\\]")])
def test_a_bad_noise_fails_at_start_up(tmp_path, noise, message):
    # the corpus does not exist: the noise is checked before anything is read
    with pytest.raises(InputError, match=message):
        pretrain_seq2seq.main(["--corpus", str(tmp_path / "missing.txt"), "--noise", noise,
                               "--output_dir", str(tmp_path / "run"), "--report_to", "none"])


class FakeAccelerator:
    """Process ``rank`` of ``world``: ``reduce`` records this process's sums and returns them."""

    def __init__(self, rank: int, world: int):
        self.process_index, self.num_processes, self.device = rank, world, torch.device("cpu")
        self.reduced = None

    def reduce(self, tensor, reduction="sum"):
        self.reduced = tensor.clone()
        return tensor


def test_held_out_scores_count_each_chunk_once_whatever_the_batch_or_process_count(pretrained):
    from selfsup.seq2seq.denoising import make_evaluate_fn
    _, summary = pretrained
    model = AutoModelForSeq2SeqLM.from_pretrained(summary["model_dir"]).eval()
    tokenizer = WordTokenizer.from_pretrained(summary["model_dir"])
    chunks = DenoisingChunks(DOCUMENTS, tokenizer, max_tokens=16)  # 12 chunks
    collate = DenoisingCollator.for_tokenizer(tokenizer, EVERY_NOISE, seed=0)
    runs = {}
    for world, batch_size in ((1, 12), (1, 5), (2, 1), (3, 4)):
        evaluate, total = make_evaluate_fn(chunks, collate, batch_size, seed=0), 0
        for rank in range(world):
            acc = FakeAccelerator(rank, world)
            with torch.no_grad():
                evaluate(model, acc)
            total = total + acc.reduced
        runs[(world, batch_size)] = total
    one = runs[(1, 12)]
    assert one[2] == sum(sum(map(len, c["sentences"])) + 1 for c in chunks)  # every target token and [EOS], once
    for key, sums in runs.items():
        torch.testing.assert_close(sums, one, rtol=1e-6, atol=1e-6, msg=str(key))


def test_a_tokenizer_left_by_another_setting_is_refused(corpus, tmp_path):
    args = ["--corpus", str(corpus), "--eval_documents", "1", "--max_steps", "1", "--output_dir", str(tmp_path), *TINY]
    pretrain_seq2seq.main(args)
    pretrain_seq2seq.main(args)  # the same settings: its tokenizer is reused
    with pytest.raises(InputError, match="tokenizer.*--vocab_size"):
        pretrain_seq2seq.main([*args, "--vocab_size", "50"])
    with pytest.raises(InputError, match="--tokenizer_type 'word'.*'wordpiece'"):
        pretrain_seq2seq.main([*args, "--tokenizer_type", "wordpiece"])
