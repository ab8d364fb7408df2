"""Denoising pretraining of ``selfsup-seq2seq`` (BART's objective) on Accelerate.

    accelerate launch scripts/pretrain_seq2seq.py              # embedded default, offline, < 5 min on 2 CPU cores
    accelerate launch scripts/pretrain_seq2seq.py --corpus ../shared/data/pretrain/python-docs.txt \
        --corpus_layout paragraphs --noise text_infilling=0.3,sentence_permutation=1
    accelerate launch scripts/pretrain_seq2seq.py --copy --corpus \
        ../shared/data/seq2seq/dialogsum/dialogsum.train.jsonl --corpus_layout dialogue_jsonl

The encoder reads a noised chunk of a document; the decoder writes the chunk as it was.
``--corpus`` takes what scripts/pretrain.py takes; ``--noise`` picks BART's noises and
their rates (selfsup.seq2seq.noising); the model flags are scripts/train_seq2seq.py's.
The result, ``<output_dir>/model``, is a folder that
``scripts/train_seq2seq.py --model_name_or_path`` fine-tunes (its copy setting is the
pretrained model's).
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

from accelerate.utils import set_seed

import selfsup  # noqa: F401  (registers selfsup-seq2seq)
from selfsup.cli import parse_config, run_script
from selfsup.errors import InputError
from selfsup.modeling.seq2seq import SelfsupSeq2SeqForConditionalGeneration
from selfsup.pretrain.data import load_documents
from selfsup.pretrain.tokenizer import TRAINED_ON, check_trained, save_trained, training_record
from selfsup.provenance import package_versions
from selfsup.seq2seq.denoising import DenoisingChunks, DenoisingCollator, DenoisingDataArguments, make_evaluate_fn
from selfsup.seq2seq.noising import NoiseConfig
from selfsup.seq2seq.run import Seq2SeqModelArguments, new_model
from selfsup.seq2seq.subword import TOKENIZER_TYPES, load_or_train_tokenizer
from selfsup.seq2seq.tokenizer import WordTokenizer
from selfsup.training import Trainer, TrainingConfig
from selfsup.training.loop import make_accelerator

# The embedded default: Python's docstrings, a 2+2-layer model of width 128, 600 steps of
# 16 chunks of <= 64 words (~1.7 epochs).
DEFAULTS = {"output_dir": "outputs/pretrain-seq2seq", "max_source_length": 64, "hidden_size": 128,
            "num_hidden_layers": 2, "num_decoder_layers": 2, "num_attention_heads": 2, "intermediate_size": 512,
            "learning_rate": 1e-3, "warmup_ratio": 0.05, "max_steps": 600, "per_device_train_batch_size": 16,
            "eval_steps": 200, "logging_steps": 20}


def main(args: list[str] | None = None) -> dict:
    data_cfg, model_cfg, train_cfg = parse_config((DenoisingDataArguments, Seq2SeqModelArguments, TrainingConfig),
                                                  args, __doc__, defaults=DEFAULTS)
    noise = NoiseConfig.parse(data_cfg.noise)  # a bad name or rate fails here, before any reading
    if data_cfg.tokenizer_type not in TOKENIZER_TYPES:
        raise InputError(f"must be one of {', '.join(TOKENIZER_TYPES)}, got {data_cfg.tokenizer_type!r}",
                         field="tokenizer_type")
    accelerator = make_accelerator(train_cfg)
    start = time.time()
    out_dir = Path(train_cfg.output_dir)

    with accelerator.main_process_first():  # the main process builds the datasets cache, the others read it
        documents = load_documents(data_cfg.corpus, data_cfg.corpus_layout,
                                   allow_eval_splits=data_cfg.allow_eval_splits, data_dir=data_cfg.data_dir)
    n_eval = round(len(documents) * data_cfg.eval_documents) if data_cfg.eval_documents < 1 \
        else int(data_cfg.eval_documents)
    if n_eval >= len(documents):
        raise InputError(f"{len(documents)} document(s) cannot be split into train and {n_eval} held-out",
                         path=data_cfg.corpus, field="eval_documents")
    split = documents.train_test_split(test_size=n_eval, seed=train_cfg.seed) if n_eval else None
    train_docs = split["train"] if split else documents
    eval_docs = split["test"]["sentences"] if split else []

    # Tokenizer: --tokenizer_name, the checkpoint's own when continuing, else one of --tokenizer_type
    # (with [MASK]) trained on the training documents by the main process, then read by all. One
    # left in output_dir by an earlier run is reused only if made the same way (as scripts/pretrain.py).
    tok_path = data_cfg.tokenizer_name or model_cfg.model_name_or_path
    if tok_path is None:
        tok_path = out_dir / "tokenizer"
        record = {**training_record(data_cfg.corpus, data_cfg.corpus_layout, data_cfg.allow_eval_splits,
                                    data_cfg.data_dir, data_cfg.vocab_size),
                  # the held-out documents, left out of the vocabulary, depend on these too
                  "tokenizer_type": data_cfg.tokenizer_type, "min_frequency": data_cfg.min_frequency,
                  "eval_documents": data_cfg.eval_documents, "seed": train_cfg.seed}
        if (tok_path / "tokenizer.json").exists():  # every process checks, so none waits on one that stopped
            check_trained(tok_path, record, log=accelerator.print)
            saved = json.loads((tok_path / TRAINED_ON).read_text()) if (tok_path / TRAINED_ON).exists() else record
            for key in ("tokenizer_type", "min_frequency", "eval_documents", "seed"):
                if saved.get(key) != record[key]:
                    raise InputError(f"this tokenizer was made with --{key} {saved.get(key)!r}, this run has "
                                     f"{record[key]!r}: delete the folder, or use another --output_dir",
                                     path=tok_path, field=key)
        with accelerator.main_process_first():
            if accelerator.is_main_process and not (tok_path / "tokenizer.json").exists():
                texts = (s for doc in train_docs["sentences"] for s in doc)
                save_trained(load_or_train_tokenizer(None, data_cfg.tokenizer_type, texts, data_cfg.vocab_size,
                                                     data_cfg.min_frequency, mask=True), tok_path, record)
    tokenizer = WordTokenizer.from_pretrained(tok_path)  # word level or WordPiece, as the folder says

    train_chunks = DenoisingChunks(train_docs["sentences"], tokenizer, data_cfg.max_source_length)
    eval_chunks = DenoisingChunks(eval_docs, tokenizer, data_cfg.max_source_length)
    accelerator.print(f"{len(documents)} documents -> {len(train_chunks)} training and {len(eval_chunks)} held-out "
                      f"chunks of <= {data_cfg.max_source_length} words; noise: {noise.describe()} "
                      f"({time.time() - start:.0f}s)")

    set_seed(train_cfg.seed)  # the initial weights are a function of the seed
    if model_cfg.model_name_or_path:
        model = SelfsupSeq2SeqForConditionalGeneration.from_pretrained(model_cfg.model_name_or_path)
    else:
        # + 1: [EOS] after the longest target; text infilling's inserted masks are cut at this length
        model = new_model(model_cfg, tokenizer, data_cfg.max_source_length + 1)
    collator = DenoisingCollator.for_tokenizer(tokenizer, noise, copy=model.config.use_copy, seed=train_cfg.seed,
                                               max_source_length=model.config.max_position_embeddings)
    evaluate_fn = make_evaluate_fn(eval_chunks, collator, train_cfg.per_device_eval_batch_size,
                                   train_cfg.seed) if len(eval_chunks) else None
    trainer = Trainer(model, train_cfg, train_chunks, collator, evaluate_fn=evaluate_fn, accelerator=accelerator,
                      hparams={**asdict(data_cfg), **asdict(model_cfg)}, tokenizer=tokenizer.hf)
    summary = trainer.train()
    final_dir = trainer.save_model(out_dir / "model", tokenizer.hf)
    summary.update(wall_seconds=time.time() - start, model_dir=str(final_dir), train_chunks=len(train_chunks),
                   eval_chunks=len(eval_chunks), noise=noise.describe(), vocab_size=len(tokenizer),
                   data=asdict(data_cfg), model=asdict(model_cfg), training=asdict(train_cfg),
                   versions=package_versions())
    if accelerator.is_main_process:
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        print(f"\nDone in {summary['wall_seconds']:.0f}s. Model: {final_dir}")
        if summary["eval"]:
            ev = summary["eval"]
            print(f"held-out reconstruction: loss {ev['reconstruction_loss']:.3f} (perplexity "
                  f"{ev['perplexity']:.1f}), teacher-forced accuracy {ev['reconstruction_accuracy']:.3f}")
        print(f"Fine-tune it with:\n    accelerate launch scripts/train_seq2seq.py --model_name_or_path {final_dir} "
              "--train_file ... --validation_file ...")
    accelerator.end_training()  # after the last collective (saving)
    return summary


if __name__ == "__main__":
    run_script(main)
