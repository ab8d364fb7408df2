"""DialogSum from three starting points, each with and without copy, at one fine-tuning budget:

* ``random``: a new selfsup-seq2seq;
* ``denoising``: pretrained by ``scripts/pretrain_seq2seq.py`` (BART's text infilling + sentence
  permutation) on the DialogSum train dialogues, unlabeled;
* ``warm_start``: BERT2BERT from a selfsup-bert folder (``--encoder_from`` / ``--decoder_from``).

Every row has the BERT's architecture and WordPiece vocabulary (random and denoising rows get
the same sizes and ``--tokenizer_name`` the BERT folder), the same seed, steps, batch and
learning rate: only the starting weights differ. Test ROUGE-1/2/L against the test split's
three references; the copy rows add a freshly initialised copy head to each start.

    python bench/dialogsum_starts.py --bert outputs/pretrain-mix/model \
        --out bench_out/dialogsum-starts --results bench/results/dialogsum-starts.json   # full: all data
    python bench/dialogsum_starts.py --bert outputs/pretrain-mix/model --threads 1 --finetune_steps 200 \
        --reuse_pretraining outputs/dialogsum-starts/denoising ...   # bench/results/dialogsum-starts.json's rows

``--reuse_pretraining`` fine-tunes from an earlier run's denoising folder instead of pretraining
again. Writes the results JSON after every row (each row's budget, wall/train/CPU seconds, the
command, provenance), rows without copy first; not run in CI.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import pretrain_seq2seq  # noqa: E402

import selfsup  # noqa: E402,F401
from selfsup.modeling import SelfsupBertConfig  # noqa: E402
from selfsup.provenance import package_versions  # noqa: E402
from selfsup.seq2seq.decoding import GenerationArguments  # noqa: E402
from selfsup.seq2seq.run import Seq2SeqDataArguments, Seq2SeqModelArguments, train  # noqa: E402
from selfsup.seq2seq.scheduled_sampling import ScheduledSamplingArguments  # noqa: E402
from selfsup.seq2seq.warm_start import WarmStartArguments  # noqa: E402
from selfsup.tasks import dialogsum  # noqa: E402
from selfsup.training import TrainingConfig  # noqa: E402

STARTS = ("random", "denoising", "warm_start")


def sizes(bert: SelfsupBertConfig) -> dict:
    return dict(hidden_size=bert.hidden_size, num_hidden_layers=bert.num_hidden_layers,
                num_decoder_layers=bert.num_hidden_layers, num_attention_heads=bert.num_attention_heads,
                intermediate_size=bert.intermediate_size, hidden_dropout_prob=bert.hidden_dropout_prob,
                attention_probs_dropout_prob=bert.attention_probs_dropout_prob)


def pretrain(args, bert: SelfsupBertConfig, out: Path) -> dict:
    """Denoising pretraining on the train dialogues, with the BERT's tokenizer and sizes."""
    flags = ["--corpus", str(dialogsum.data_file("train", args.data_dir)), "--corpus_layout", "dialogue_jsonl",
             "--tokenizer_name", args.bert, "--max_source_length", str(args.max_source_length),
             "--max_steps", str(args.pretrain_steps), "--per_device_train_batch_size", str(args.batch_size),
             "--learning_rate", str(args.pretrain_learning_rate), "--warmup_ratio", "0.05",
             "--eval_documents", "50", "--eval_steps", "0", "--save_steps", "0", "--report_to", "none",
             "--seed", str(args.seed), "--output_dir", str(out), "--noise", args.noise,
             "--cpu_threads", str(args.threads)]
    for key, value in sizes(bert).items():
        flags += [f"--{key}", str(value)]
    return pretraining_record(pretrain_seq2seq.main(flags))


def pretraining_record(summary: dict, reused_from: Path | None = None) -> dict:
    """The budget of a pretraining run, from the summary.json it wrote: its own settings, not this
    run's flags, so a reused folder is described by what made it."""
    data, training = summary["data"], summary["training"]
    command = ["--corpus", data["corpus"], "--corpus_layout", data["corpus_layout"], "--tokenizer_name",
               str(data["tokenizer_name"]), "--max_source_length", str(data["max_source_length"]),
               "--max_steps", str(training["max_steps"]), "--per_device_train_batch_size",
               str(training["per_device_train_batch_size"]), "--learning_rate", str(training["learning_rate"]),
               "--warmup_ratio", str(training["warmup_ratio"]), "--seed", str(training["seed"]), "--output_dir",
               training["output_dir"], "--noise", data["noise"], "--cpu_threads", str(training["cpu_threads"]),
               "--eval_documents", str(data["eval_documents"])]
    for key in ("hidden_size", "num_hidden_layers", "num_decoder_layers", "num_attention_heads", "intermediate_size",
                "hidden_dropout_prob", "attention_probs_dropout_prob"):
        command += [f"--{key}", str(summary["model"][key])]
    steps, batch = summary["steps"], training["per_device_train_batch_size"]
    return {"command": "scripts/pretrain_seq2seq.py " + " ".join(command),
            "reused_from": str(reused_from) if reused_from else None, "steps": steps,
            "budget": {"steps": steps, "batch_size": batch, "learning_rate": training["learning_rate"],
                       "noise": summary["noise"], "max_source_length": data["max_source_length"],
                       "text": f"{data['corpus']} ({data['corpus_layout']}: the dialogues only, no summaries)",
                       "epochs_over_chunks": round(steps * batch / max(1, summary["train_chunks"]), 3)},
            "wall_seconds": round(summary["wall_seconds"], 1), "train_seconds": round(summary["train_seconds"], 1),
            "eval": summary.get("eval"), "train_chunks": summary["train_chunks"], "model_dir": summary["model_dir"]}


def finetune(args, bert: SelfsupBertConfig, start: str, copy: bool, pretrained: Path | None, out: Path) -> dict:
    model = Seq2SeqModelArguments(copy=copy, **sizes(bert),
                                  model_name_or_path=str(pretrained) if start == "denoising" else None)
    data = Seq2SeqDataArguments(
        train_file=str(dialogsum.data_file("train", args.data_dir)), source_column=dialogsum.SOURCE_COLUMN,
        target_column=dialogsum.target_columns("train"), test_file=str(dialogsum.data_file("test", args.data_dir)),
        eval_target_column=",".join(dialogsum.target_columns("test")),
        tokenizer_name=args.bert if start == "random" else None, max_source_length=args.max_source_length,
        max_target_length=args.max_target_length, max_train_samples=args.max_train_samples,
        max_eval_samples=args.max_test_samples)
    warm = WarmStartArguments(args.bert, args.bert) if start == "warm_start" else None
    cfg = TrainingConfig(output_dir=str(out), seed=args.seed, learning_rate=args.learning_rate,
                         warmup_ratio=0.05, max_steps=args.finetune_steps, num_train_epochs=args.epochs,
                         per_device_train_batch_size=args.batch_size, per_device_eval_batch_size=50,
                         report_to="none", logging_steps=50, save_steps=0, cpu_threads=args.threads)
    gen = GenerationArguments(max_new_tokens=args.max_target_length, num_beams=args.num_beams,
                              no_repeat_ngram_size=3 if args.num_beams > 1 else 0)
    started, cpu_started = time.time(), time.process_time()
    summary = train(model, data, ScheduledSamplingArguments(), gen, cfg, warm_start=warm)
    steps = summary["train"].get("steps")
    return {"test": summary["test"], "train_steps": steps,
            "budget": {"steps": steps, "epochs": summary["train"].get("epoch"), "batch_size": args.batch_size,
                       "learning_rate": args.learning_rate, "warmup_ratio": cfg.warmup_ratio, "seed": args.seed,
                       "train_examples": summary["train_examples"], "max_source_length": args.max_source_length,
                       "max_target_length": args.max_target_length, "num_beams": args.num_beams,
                       "test_examples": len(dialogsum.load("test", args.data_dir, args.max_test_samples))},
            "train_loss": summary["train"].get("train_loss"), "train_examples": summary["train_examples"],
            # train_seconds: the optimizer steps; the rest of wall_seconds is encoding, saving and test decoding
            "train_seconds": round(summary["train"]["train_seconds"], 1),
            "wall_seconds": round(time.time() - started, 1),
            # this process's CPU time: on a shared machine, what the row cost regardless of the others' load
            "cpu_seconds": round(time.process_time() - cpu_started, 1),
            "warm_start": summary.get("warm_start", {}).get("initialized") if start == "warm_start" else None}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bert", required=True, help="the selfsup-bert folder to warm-start from (its tokenizer and "
                                                 "sizes serve every row)")
    p.add_argument("--out", default="bench_out/dialogsum-starts")
    p.add_argument("--results", default=None, help="the results JSON (default: <out>/results.json)")
    p.add_argument("--data_dir", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max_train_samples", type=int, default=None, help="default: all 12,460")
    p.add_argument("--max_test_samples", type=int, default=None, help="default: all 500")
    p.add_argument("--finetune_steps", type=int, default=0, help="0: train --epochs epochs")
    p.add_argument("--epochs", type=float, default=10.0)
    p.add_argument("--pretrain_steps", type=int, default=20000)
    p.add_argument("--pretrain_learning_rate", type=float, default=1e-3)
    p.add_argument("--noise", default="text_infilling=0.3,sentence_permutation=1.0")
    p.add_argument("--learning_rate", type=float, default=1e-3)
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--max_source_length", type=int, default=256)
    p.add_argument("--max_target_length", type=int, default=64)
    p.add_argument("--num_beams", type=int, default=1)
    p.add_argument("--starts", nargs="*", default=list(STARTS), choices=STARTS)
    p.add_argument("--reuse_pretraining", default=None, help="an earlier run's <out>/denoising folder: its model "
                                                                "instead of pretraining again (its summary.json's "
                                                                "budget is recorded, --pretrain_* flags are unused)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads for every phase (0: the Trainer's "
                                                          "choice, the cores this process may use)")
    args = p.parse_args()
    t0 = time.time()
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    results_path = Path(args.results) if args.results else out / "results.json"
    bert = SelfsupBertConfig.from_pretrained(args.bert)
    results = {"command": "python " + " ".join(sys.argv),
               "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "load_average_at_start": os.getloadavg(),
               "setup": {**vars(args), "bert_config": sizes(bert) | {"vocab_size": bert.vocab_size},
                         "dialogsum_version": dialogsum.VERSION, "threads": torch.get_num_threads(),
                         "versions": package_versions(),
                         "metric": "ROUGE-1/2/L F1 (0-100), best of the 3 test references, in the tokenizer's "
                                   "normalised (lower-cased WordPiece) text"},
               "rows": {}}

    def save():
        results_path.parent.mkdir(parents=True, exist_ok=True)
        results_path.write_text(json.dumps(results, indent=2, default=str) + "\n")

    pretrained = None
    if "denoising" in args.starts and args.reuse_pretraining:
        folder = Path(args.reuse_pretraining)
        results["pretraining"] = pretraining_record(json.loads((folder / "summary.json").read_text()), folder)
        pretrained = Path(results["pretraining"]["model_dir"])
        save()
    elif "denoising" in args.starts:
        results["pretraining"] = pretrain(args, bert, out / "denoising")
        pretrained = Path(results["pretraining"]["model_dir"])
        save()
    # Without copy first, then with: the question (denoising vs random) is answered by the
    # first rows, should a run be cut short.
    for copy in (False, True):
        for start in args.starts:
            name = f"{start}{' + copy' if copy else ''}"
            results["rows"][name] = finetune(args, bert, start, copy, pretrained,
                                             out / f"{start}-copy{int(copy)}")
            print(name, json.dumps(results["rows"][name]["test"]))
            save()
    rows = results["rows"]
    for copy in ("", " + copy"):
        if f"random{copy}" in rows:
            for start in ("denoising", "warm_start"):
                if f"{start}{copy}" in rows:
                    gain = rows[f"{start}{copy}"]["test"]["rougeL"] - rows[f"random{copy}"]["test"]["rougeL"]
                    results.setdefault("rougeL_gain_over_random", {})[f"{start}{copy}"] = round(gain, 2)
    gains = results.get("rougeL_gain_over_random", {})
    results["target"] = {"claim": "denoising-pretrained beats random init by >= 2 ROUGE-L at equal fine-tuning "
                                  "budget"}
    for copy, key in (("", "met_without_copy"), (" + copy", "met_with_copy")):
        if f"denoising{copy}" in gains:
            results["target"][key] = gains[f"denoising{copy}"] >= 2.0
    results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    results["load_average_at_end"] = os.getloadavg()
    results["total_wall_seconds"] = round(time.time() - t0, 1)
    save()
    print(json.dumps(results.get("rougeL_gain_over_random"), indent=2))


if __name__ == "__main__":
    main()
