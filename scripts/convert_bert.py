"""Convert BERT checkpoints between Hugging Face's `bert` format and `selfsup-bert`.

    python scripts/convert_bert.py --from-hf path/to/bert --out path/to/selfsup-bert
    python scripts/convert_bert.py --to-hf path/to/selfsup-bert --out path/to/bert

Each architecture becomes its counterpart with its heads: BertModel, BertForPreTraining,
BertForMaskedLM, BertForSequenceClassification, BertForTokenClassification and
BertForQuestionAnswering <-> SelfsupBert<same>. A tensor with no counterpart is an error,
never dropped. Tokenizer files are copied along. Only safetensors weights are read.
"""
from __future__ import annotations

import argparse

from selfsup.cli import run_script
from selfsup.modeling.convert_bert import convert


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    direction = parser.add_mutually_exclusive_group(required=True)
    direction.add_argument("--from-hf", metavar="IN", help="a Hugging Face BERT folder (model_type bert)")
    direction.add_argument("--to-hf", metavar="IN", help="a selfsup-bert folder")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an input error")
    args = parser.parse_args(argv)
    out = convert(args.to_hf or args.from_hf, args.out, to_hf=args.to_hf is not None)
    kind = "Hugging Face BERT" if args.to_hf else "selfsup-bert"
    print(f"wrote {kind} checkpoint to {out}")


if __name__ == "__main__":
    run_script(main)
