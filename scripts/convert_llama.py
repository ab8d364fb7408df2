"""Convert Llama-family checkpoints (Llama, SmolLM2) between Hugging Face's `llama` format and `selfsup-gpt`.

    python scripts/convert_llama.py --from-hf path/to/llama --out path/to/selfsup-gpt
    python scripts/convert_llama.py --from-hf DIR --gguf_file model.gguf --out path/to/selfsup-gpt
    python scripts/convert_llama.py --to-hf path/to/selfsup-gpt --out path/to/llama

The selfsup-gpt folder loads with AutoModelForCausalLM (after `import selfsup`), the Llama
folder as LlamaForCausalLM. A GGUF file is dequantised to float32. Tokenizer files and the
generation config are copied along. Only safetensors (or GGUF) weights are read.
"""
from __future__ import annotations

import argparse

from selfsup.cli import run_script
from selfsup.modeling.convert_llama import convert


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    direction = parser.add_mutually_exclusive_group(required=True)
    direction.add_argument("--from-hf", metavar="IN", help="a Hugging Face Llama folder (model_type llama)")
    direction.add_argument("--to-hf", metavar="IN", help="a selfsup-gpt folder with Llama blocks")
    parser.add_argument("--gguf_file", help="with --from-hf: a GGUF file inside IN to read instead of safetensors")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an input error")
    args = parser.parse_args(argv)
    out = convert(args.to_hf or args.from_hf, args.out, to_hf=args.to_hf is not None, gguf_file=args.gguf_file)
    kind = "Hugging Face Llama" if args.to_hf else "selfsup-gpt"
    print(f"wrote {kind} checkpoint to {out}")


if __name__ == "__main__":
    run_script(main)
