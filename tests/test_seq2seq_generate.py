"""transformers' ``model.generate()`` on selfsup-seq2seq, driven by a GenerationConfig,
gives what the project's own decoders (selfsup.seq2seq.decoding) give, with and without
the copy head, on a tiny model trained to reverse its source (copied OOV words included); so
does ``pipeline("selfsup-text2text")`` on its saved folder."""
from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForSeq2SeqLM, GenerationConfig, pipeline
from transformers.pipelines import check_task

import selfsup  # noqa: F401
from selfsup.modeling.seq2seq import SelfsupSeq2SeqConfig, SelfsupSeq2SeqForConditionalGeneration
from selfsup.seq2seq.data import Pair
from selfsup.seq2seq.decoding import GenerationArguments, generate
from selfsup.seq2seq.pipeline import TASK, SelfsupText2TextPipeline
from selfsup.seq2seq.run import predict
from selfsup.seq2seq.tokenizer import WordTokenizer

V, PAD, UNK, BOS, EOS = 20, 0, 1, 2, 3

# Tiny matrices gain nothing from intra-op threads (conftest.one_thread).
pytestmark = pytest.mark.usefixtures("one_thread")


def reversal_batch(n: int, g: torch.Generator) -> dict[str, torch.Tensor]:
    """Sources of 2-6 tokens, some out of the vocabulary (extended ids V, V+1: [UNK] to the
    encoder); targets: the source reversed, then [EOS]."""
    lengths = torch.randint(2, 7, (n,), generator=g)
    ext = torch.randint(4, V + 2, (n, 6), generator=g)
    mask = (torch.arange(6)[None] < lengths[:, None]).long()
    ext = ext.masked_fill(mask == 0, PAD)
    labels = torch.full((n, 7), -100)
    for i, length in enumerate(lengths.tolist()):
        labels[i, :length] = ext[i, :length].flip(0)
        labels[i, length] = EOS
    return {"input_ids": ext.masked_fill(ext >= V, UNK), "attention_mask": mask, "source_extended_ids": ext,
            "labels": labels}


@pytest.fixture(scope="module", params=[True, False], ids=["copy", "no-copy"])
def trained(request):
    torch.manual_seed(0)
    model = SelfsupSeq2SeqForConditionalGeneration(SelfsupSeq2SeqConfig(
        vocab_size=V, hidden_size=32, num_hidden_layers=1, num_decoder_layers=1, num_attention_heads=2,
        intermediate_size=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
        use_copy=request.param, pad_token_id=PAD, unk_token_id=UNK, bos_token_id=BOS, eos_token_id=EOS,
        decoder_start_token_id=BOS))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    for _ in range(150):
        batch = reversal_batch(32, g)
        if not request.param:
            batch.pop("source_extended_ids")
            batch["labels"] = batch["labels"].masked_fill(batch["labels"] >= V, UNK)
        loss = model(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    torch.set_num_threads(before)
    return model.eval()


def theirs(model, batch, **config) -> list[list[int]]:
    """generate()'s sequences less the start token, up to and including the first [EOS]."""
    extra = {"source_extended_ids": batch["source_extended_ids"]} if model.config.use_copy else {}
    out = model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                         generation_config=GenerationConfig(**config), **extra)
    assert (out[:, 0] == BOS).all()
    rows = out[:, 1:].tolist()
    return [r[:r.index(EOS) + 1] if EOS in r else r for r in rows]


def ours(model, batch, **args) -> list[list[int]]:
    return generate(model, batch["input_ids"], batch["attention_mask"],
                    batch["source_extended_ids"] if model.config.use_copy else None, GenerationArguments(**args))


def test_the_tiny_model_learned_to_reverse(trained):
    batch = reversal_batch(64, torch.Generator().manual_seed(1))
    out = ours(trained, batch, max_new_tokens=8)
    target = batch["labels"] if trained.config.use_copy else batch["labels"].masked_fill(batch["labels"] >= V, UNK)
    right = sum(o == [t for t in row if t != -100] for o, row in zip(out, target.tolist()))
    # far above chance (a random 2-6 token string is ~never the reversal); without copy the OOV
    # words are [UNK] in the source and the target alike, which this small budget learns less well
    assert right >= (0.5 if trained.config.use_copy else 0.2) * len(out), right
    if trained.config.use_copy:  # it writes copied OOV words by their extended ids
        assert any(t >= V for row in out for t in row)


@pytest.mark.parametrize("config", [
    dict(max_new_tokens=8),
    dict(max_new_tokens=8, no_repeat_ngram_size=2),
    dict(max_new_tokens=3),
    dict(max_new_tokens=8, num_beams=3),
    dict(max_new_tokens=8, num_beams=4, length_penalty=0.5),
    dict(max_new_tokens=8, num_beams=3, length_penalty=2.0, no_repeat_ngram_size=2),
], ids=["greedy", "greedy-no-repeat-2", "greedy-max-3", "beam-3", "beam-4-lp0.5", "beam-3-lp2-no-repeat-2"])
def test_generate_equals_the_projects_decoders(trained, config):
    batch = reversal_batch(16, torch.Generator().manual_seed(2))
    expected = ours(trained, batch, **config)
    got = theirs(trained, batch, do_sample=False, early_stopping=True, **config)
    assert got == expected


def test_min_new_tokens_holds_back_eos(trained):
    batch = reversal_batch(16, torch.Generator().manual_seed(3))
    free = theirs(trained, batch, max_new_tokens=10, do_sample=False)
    assert min(len(r) for r in free) < 5  # some row ends early without the constraint
    held = theirs(trained, batch, max_new_tokens=10, min_new_tokens=5, do_sample=False)
    assert all(EOS not in r[:5] for r in held)


def test_sampling_with_top_k_1_is_greedy_and_sampling_draws_from_the_model(trained):
    batch = reversal_batch(16, torch.Generator().manual_seed(4))
    torch.manual_seed(0)
    assert theirs(trained, batch, max_new_tokens=8, do_sample=True, top_k=1) == ours(trained, batch, max_new_tokens=8)
    torch.manual_seed(0)
    hot = theirs(trained, batch, max_new_tokens=8, do_sample=True, temperature=5.0, top_k=0)
    assert hot != ours(trained, batch, max_new_tokens=8)  # a flat distribution: not the greedy output


def test_tokenize_generate_batch_decode_on_a_saved_folder(trained, tmp_path):
    # 16 words (w4 ... w19, by descending frequency) fill the model's 20 ids with the 4 specials
    words = [f"w{i}" for i in range(4, V)]
    tokenizer = WordTokenizer.train([" ".join([w] * (40 - i)) for i, w in enumerate(words)], V)
    assert len(tokenizer) == V
    trained.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    model, tokenizer = AutoModelForSeq2SeqLM.from_pretrained(tmp_path).eval(), WordTokenizer.from_pretrained(tmp_path)
    texts = ["w5 w9 zed", "w12 qux w4 w7", "w8 w6", "yon w10 w11 w13 w14"]
    inputs, oovs = tokenizer.encode_batch(texts)
    sequences = model.generate(**inputs, generation_config=GenerationConfig(max_new_tokens=8, num_beams=2))
    decoded = tokenizer.batch_decode(sequences, oovs)
    # the project's own path (scripts/generate.py, evaluation) gives the same text
    assert decoded == predict(model, tokenizer, [Pair(t, [t]) for t in texts],
                              GenerationArguments(max_new_tokens=8, num_beams=2), progress=False)
    if model.config.use_copy:  # OOV words come back as written
        assert any(w in d.split() for d, row in zip(decoded, oovs) for w in row), decoded


def test_the_text2text_pipeline_decodes_as_predict_does_on_a_saved_folder(trained, tmp_path):
    words = [f"w{i}" for i in range(4, V)]
    WordTokenizer.train([" ".join([w] * (40 - i)) for i, w in enumerate(words)], V).save_pretrained(tmp_path)
    trained.save_pretrained(tmp_path)
    texts = ["w5 w9 zed", "w12 qux w4 w7", "w8 w6", "yon w10 w11 w13 w14"]
    pipe = pipeline(TASK, model=str(tmp_path))
    out = pipe(texts, generation_config=GenerationConfig(max_new_tokens=8, num_beams=2))
    expected = predict(pipe.model, WordTokenizer.from_pretrained(tmp_path), [Pair(t, [t]) for t in texts],
                       GenerationArguments(max_new_tokens=8, num_beams=2), progress=False)
    assert [o[0]["generated_text"] for o in out] == expected
    if trained.config.use_copy:  # the source's OOV words come back as written
        assert "zed" in expected[0].split() and "yon" in expected[3].split(), expected
    assert pipe("w8 w6", max_new_tokens=8, num_beams=2) == out[2]


def test_the_pipeline_task_is_registered_and_transformers_still_refuses_the_removed_name():
    assert check_task(TASK)[1]["impl"] is SelfsupText2TextPipeline
    with pytest.raises(KeyError, match="text2text-generation has been removed"):
        check_task("text2text-generation")
