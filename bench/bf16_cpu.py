"""bf16 autocast vs fp32 on the CPU: one linear layer's forward+backward, same run, interleaved.

    python bench/bf16_cpu.py --output bench/results/bf16-cpu.json

Why ``--mixed_precision`` stays off on CPUs by default (``configs/accelerate/cpu.yaml``):
bf16 pays on CPUs with native bf16 matrix units (AVX-512 BF16, AMX) and costs on the rest.
A machine has one or the other, so the bench runs the comparison twice, each in a fresh
process: with the CPU as it is, and with oneDNN and ATen held to AVX2
(``ONEDNN_MAX_CPU_ISA=AVX2``, ``ATEN_CPU_CAPABILITY=avx2``), which is what a CPU without
those units offers. Each child times fp32 and bf16 alternately (``bench/timing.py``) and
reports medians; the ratio within one child is fair on a shared machine, the seconds are not.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

# What a CPU without native bf16 offers: the environment is read once, when torch loads.
SETTINGS = {"native": {}, "avx2_only": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}}


def child(tokens: int, hidden: int, repeats: int) -> dict:
    """(fp32 seconds, bf16 seconds) per forward+backward of Linear(hidden, 4 * hidden) on
    (tokens, hidden) inputs: the shape of a BERT feed-forward at ``tokens`` positions."""
    import torch

    sys.path.insert(0, str(Path(__file__).parent))
    from timing import time_interleaved

    torch.manual_seed(0)
    layer = torch.nn.Linear(hidden, 4 * hidden)
    x = torch.randn(tokens, hidden, requires_grad=True)

    def step(bf16: bool):
        def run():
            layer.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                y = layer(x)
            y.float().pow(2).mean().backward()
        return run

    times = time_interleaved({"fp32": step(False), "bf16": step(True)}, repeats)
    return {"seconds": times, "bf16_over_fp32": times["bf16"] / times["fp32"], "threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokens", type=int, default=4096, help="positions per step (32 x 128)")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--output", type=Path, default=None)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args.tokens, args.hidden, args.repeats)))
        return
    flags = ["--tokens", str(args.tokens), "--hidden", str(args.hidden), "--repeats", str(args.repeats)]
    cpu_flags = sorted({f for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")
                        for f in line.split(":", 1)[1].split() if "bf16" in f or f.startswith("amx")})
    result = {"config": {"tokens": args.tokens, "hidden": args.hidden, "repeats": args.repeats},
              "cpu_bf16_flags": cpu_flags, "load_average_before": os.getloadavg(), "runs": {}}
    for name, env in SETTINGS.items():
        out = subprocess.run([sys.executable, __file__, "--child", *flags], env=os.environ | env,
                             capture_output=True, text=True, check=True)
        result["runs"][name] = {"env": env, **json.loads(out.stdout.splitlines()[-1])}
    result["load_average_after"] = os.getloadavg()
    print(json.dumps(result, indent=2))
    if args.output:
        args.output.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
