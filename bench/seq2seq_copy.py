"""Where copying matters, measured: each comparison in one run with the same budget.

* names task: test exact match with and without ``--copy`` (held-out names are never in
  the vocabulary, so without copy they cannot be written);
* DialogSum: test ROUGE-1/2/L (3 references) for no copy / copy / copy + coverage /
  copy + scheduled sampling, each decoded greedily and with beam search.

    python bench/seq2seq_copy.py --out bench_out/seq2seq \
        [--dialogsum_steps 300 --dialogsum_train 4000 --dialogsum_test 100 --hidden_size 128]

Writes ``results.json`` (every number with its provenance) and ``table.md``. Not run in CI.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from transformers import AutoModelForSeq2SeqLM

import selfsup  # noqa: F401
from selfsup.seq2seq.data import read_pairs
from selfsup.seq2seq.decoding import GenerationArguments
from selfsup.seq2seq.run import Seq2SeqDataArguments, Seq2SeqModelArguments, predict, score, train
from selfsup.seq2seq.scheduled_sampling import ScheduledSamplingArguments
from selfsup.seq2seq.tokenizer import WordTokenizer
from selfsup.tasks import dialogsum, names
from selfsup.training import TrainingConfig


def evaluate(folder: Path, test_file: Path, source: str, refs, decoders: dict, limit: int | None) -> dict:
    model = AutoModelForSeq2SeqLM.from_pretrained(folder).to("cuda" if torch.cuda.is_available() else "cpu")
    tok = WordTokenizer.from_pretrained(folder)
    pairs = read_pairs(test_file, source, refs)[:limit]
    out = {}
    for name, gen in decoders.items():
        start = time.time()
        preds = predict(model, tok, pairs, gen, batch_size=50, max_source_length=model.config.max_position_embeddings)
        out[name] = {**score(preds, pairs, tok), "decode_seconds": round(time.time() - start, 1)}
    return out


def run_names(args, out: Path) -> dict:
    files = names.write(out / "names_data", n_train=2000, n_test=200, seed=args.seed)
    results = {}
    for copy in (False, True):
        folder = out / f"names_copy{int(copy)}"
        model = Seq2SeqModelArguments(copy=copy, hidden_size=32, num_hidden_layers=1, num_decoder_layers=1,
                                      num_attention_heads=2, intermediate_size=64, hidden_dropout_prob=0.0,
                                      attention_probs_dropout_prob=0.0)
        data = Seq2SeqDataArguments(train_file=str(files["train"]), source_column="src", target_column="tgt",
                                    vocab_size=100, min_frequency=3, max_source_length=32, max_target_length=32)
        cfg = TrainingConfig(output_dir=str(folder), learning_rate=3e-3, warmup_steps=20, max_steps=args.names_steps,
                             per_device_train_batch_size=32, report_to="none", seed=args.seed, logging_steps=50)
        summary = train(model, data, ScheduledSamplingArguments(), GenerationArguments(max_new_tokens=16), cfg)
        results[f"copy={copy}"] = {"train_seconds": summary["train"]["train_seconds"],
                                   **evaluate(folder, files["test"], "src", "tgt",
                                              {"greedy": GenerationArguments(max_new_tokens=16)}, None)}
    return results


def run_dialogsum(args, out: Path) -> dict:
    variants = {
        "no copy": (dict(copy=False), ScheduledSamplingArguments()),
        "copy": (dict(copy=True), ScheduledSamplingArguments()),
        "copy + coverage": (dict(copy=True, coverage=True), ScheduledSamplingArguments()),
        "copy + scheduled sampling": (dict(copy=True), ScheduledSamplingArguments(
            scheduled_sampling="inverse_sigmoid", ss_k=args.ss_k)),
    }
    decoders = {"greedy": GenerationArguments(max_new_tokens=64),
                "beam4": GenerationArguments(max_new_tokens=64, num_beams=4, length_penalty=1.0,
                                             no_repeat_ngram_size=3, early_stopping=True)}
    results = {}
    for name, (model_kw, ss) in variants.items():
        if args.only and name not in args.only:
            continue
        folder = out / ("dialogsum_" + name.replace(" ", "").replace("+", "_"))
        model = Seq2SeqModelArguments(hidden_size=args.hidden_size, num_hidden_layers=2, num_decoder_layers=2,
                                      num_attention_heads=4, intermediate_size=4 * args.hidden_size,
                                      hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, **model_kw)
        data = Seq2SeqDataArguments(train_file=str(dialogsum.data_file("train")), source_column="dialogue",
                                    target_column="summary", vocab_size=args.vocab_size,
                                    max_source_length=args.max_source_length,
                                    max_target_length=64, max_train_samples=args.dialogsum_train)
        cfg = TrainingConfig(output_dir=str(folder), learning_rate=1e-3, warmup_steps=50,
                             max_steps=args.dialogsum_steps, per_device_train_batch_size=args.batch_size,
                             report_to="none",
                             seed=args.seed, logging_steps=50)
        summary = train(model, data, ss, decoders["greedy"], cfg)
        results[name] = {"train_seconds": round(summary["train"]["train_seconds"], 1),
                         "final_train_loss": summary["train"]["train_loss"],
                         **evaluate(folder, dialogsum.data_file("test"), "dialogue", dialogsum.target_columns("test"),
                                    decoders, args.dialogsum_test)}
    return results


def table(results: dict, args) -> str:
    lines = ["| task | variant | decoding | EM | BLEU | ROUGE-1 | ROUGE-2 | ROUGE-L | train s |", "|" + "---|" * 9]
    for task, rows in results.items():
        if task == "setup":
            continue
        for variant, r in rows.items():
            for dec, m in r.items():
                if isinstance(m, dict):
                    lines.append(f"| {task} | {variant} | {dec} | {100 * m['exact_match']:.1f} | {m['bleu']:.2f} | "
                                 f"{m['rouge1']:.2f} | {m['rouge2']:.2f} | {m['rougeL']:.2f} | "
                                 f"{r['train_seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="bench_out/seq2seq")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--names_steps", type=int, default=300)
    p.add_argument("--dialogsum_steps", type=int, default=300)
    p.add_argument("--dialogsum_train", type=int, default=None, help="train examples (default: all 12460)")
    p.add_argument("--dialogsum_test", type=int, default=None, help="test examples (default: all 500)")
    p.add_argument("--hidden_size", type=int, default=128)
    p.add_argument("--vocab_size", type=int, default=8000)
    p.add_argument("--max_source_length", type=int, default=256, help="dialogue words kept (truncated after)")
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--ss_k", type=float, default=50.0)
    p.add_argument("--only", nargs="*", help="DialogSum variants to run (default: all)")
    p.add_argument("--skip_names", action="store_true")
    p.add_argument("--skip_dialogsum", action="store_true")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {"setup": {**vars(args), "torch": torch.__version__, "device": "cuda" if torch.cuda.is_available()
                         else f"cpu ({torch.get_num_threads()} threads)", "names_version": names.VERSION,
                         "dialogsum_version": dialogsum.VERSION}}
    if not args.skip_names:
        results["names"] = run_names(args, out)
        (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    if not args.skip_dialogsum:
        results["dialogsum"] = run_dialogsum(args, out)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    (out / "table.md").write_text(table(results, args))
    print(table(results, args))


if __name__ == "__main__":
    main()
