"""Decode with a saved ``selfsup-seq2seq`` folder, from a jsonl file or stdin.

    python scripts/generate.py --model_name_or_path out/ --input_file test.jsonl --source_column src \
        [--num_beams 4 --length_penalty 1.0 --no_repeat_ngram_size 3 --early_stopping true]
        [--do_sample true --temperature 0.7 --top_k 50 --top_p 0.9]
    echo "Hi , I am Kuroro ." | python scripts/generate.py --model_name_or_path out/

Writes one JSON line per input (``source``, ``prediction``) to ``--output_file`` or stdout;
copied out-of-vocabulary words come back as the source's own words.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field

import torch
from transformers import AutoModelForSeq2SeqLM

import selfsup  # noqa: F401  (registers selfsup-seq2seq)
from selfsup.cli import parse_config, run_script
from selfsup.errors import InputError
from selfsup.jsonl import read_jsonl
from selfsup.resources import require_model
from selfsup.seq2seq.data import Pair
from selfsup.seq2seq.decoding import GenerationArguments
from selfsup.seq2seq.run import predict
from selfsup.seq2seq.tokenizer import WordTokenizer


@dataclass
class GenerateArguments:
    model_name_or_path: str = field(default=None, metadata={"help": "folder saved by train_seq2seq.py"})
    input_file: str | None = field(default=None, metadata={"help": "jsonl; default: plain-text lines on stdin"})
    source_column: str = "src"
    output_file: str | None = None
    batch_size: int = 32
    max_source_length: int = 256


def read_sources(args: GenerateArguments) -> list[str]:
    if args.input_file is None:
        lines = [(i, line.rstrip("\n")) for i, line in enumerate(sys.stdin, 1)]
        for i, line in lines:
            if not line.strip():
                raise InputError("empty source", path="<stdin>", line=i)
        return [line for _, line in lines]
    sources = []
    for i, row in read_jsonl(args.input_file):
        value = row.get(args.source_column)
        if not isinstance(value, str) or not value.strip():
            raise InputError("missing or empty source", path=args.input_file, line=i, field=args.source_column)
        sources.append(value)
    return sources


def main(argv: list[str] | None = None) -> list[str]:
    args, gen = parse_config((GenerateArguments, GenerationArguments), argv, description=__doc__)
    if args.model_name_or_path is None:
        raise InputError("--model_name_or_path is required", field="model_name_or_path")
    model = AutoModelForSeq2SeqLM.from_pretrained(require_model(args.model_name_or_path))
    model.to("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = WordTokenizer.from_pretrained(args.model_name_or_path)
    sources = read_sources(args)
    predictions = predict(model, tokenizer, [Pair(s, [""]) for s in sources], gen, args.batch_size,
                          args.max_source_length, progress=args.output_file is not None)
    lines = [json.dumps({"source": s, "prediction": p}, ensure_ascii=False) + "\n"
             for s, p in zip(sources, predictions)]
    if args.output_file:
        with open(args.output_file, "w", encoding="utf-8") as f:
            f.writelines(lines)
    else:
        sys.stdout.writelines(lines)
    return predictions


if __name__ == "__main__":
    run_script(main)
