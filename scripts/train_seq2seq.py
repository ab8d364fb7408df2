"""Train ``selfsup-seq2seq`` (optionally with copy, coverage, scheduled sampling).

    accelerate launch scripts/train_seq2seq.py --train_file a.jsonl --validation_file b.jsonl \
        --source_column src --target_column tgt [--copy] [--coverage] \
        [--scheduled_sampling inverse_sigmoid --ss_k 20] [--config configs/seq2seq/names-tiny.yaml] \
        [--encoder_from outputs/pretrain/model [--decoder_from outputs/pretrain/model]]

``--encoder_from`` / ``--decoder_from`` warm-start from a selfsup-bert (or BERT) folder, BERT2BERT
style (selfsup.seq2seq.warm_start): its sizes and tokenizer, new cross-attention.

Evaluates with exact match, BLEU and ROUGE-1/2/L (offline) and saves a Hub-style folder
(``AutoModelForSeq2SeqLM`` + ``AutoTokenizer``) with ``results.json`` in ``--output_dir``.
"""
from __future__ import annotations

import json
import logging

from accelerate import PartialState

import selfsup  # noqa: F401  (registers selfsup-seq2seq with the Auto classes)
from selfsup.cli import parse_config, run_script
from selfsup.seq2seq.decoding import GenerationArguments
from selfsup.seq2seq.run import Seq2SeqDataArguments, Seq2SeqModelArguments, train
from selfsup.seq2seq.scheduled_sampling import ScheduledSamplingArguments
from selfsup.seq2seq.warm_start import WarmStartArguments
from selfsup.training import TrainingConfig


def main(args: list[str] | None = None) -> dict:
    logging.basicConfig(level=logging.INFO)
    *configs, warm_start = parse_config((Seq2SeqModelArguments, Seq2SeqDataArguments, ScheduledSamplingArguments,
                                         GenerationArguments, TrainingConfig, WarmStartArguments), args,
                                        description=__doc__)
    summary = train(*configs, warm_start=warm_start)
    PartialState().destroy_process_group()  # gloo aborts at exit otherwise
    print(json.dumps({k: summary.get(k) for k in ("validation", "test")}, indent=2))
    return summary


if __name__ == "__main__":
    run_script(main)
