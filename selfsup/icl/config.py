"""Flags of scripts/icl_eval.py (HfArgumentParser; also fillable from ``--config x.yaml``)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ICLArguments:
    model: str = field(metadata={"help": "model folder or Hub id (AutoModelForCausalLM), or a .gguf file"})
    tasks: str = field(metadata={"help": "comma-separated task names or task YAML paths"})
    gguf_file: str | None = field(default=None, metadata={"help": "GGUF file name inside --model"})
    peft: str | None = field(default=None, metadata={"help": "a peft adapter folder applied on top of --model"})
    num_fewshot: str = field(default="0", metadata={"help": "shots, or a comma list (0,1,4,8) for a curve"})
    seed: int = field(default=1234, metadata={"help": "seeds demonstration sampling and the bootstrap"})
    limit: int | None = field(default=None, metadata={"help": "evaluate only the first n examples per task"})
    batch_size: int = field(default=8, metadata={"help": "distinct contexts per forward pass"})
    max_length: int | None = field(default=None, metadata={"help": "context window; default: the model's"})
    dtype: str = field(default="float32", metadata={"help": "float32 | bfloat16 | float16"})
    scorer: str = field(default="fast", metadata={"help": "fast | naive (one forward per request)"})
    calibrate: bool = field(default=False, metadata={"help": "also report contextual-calibration accuracy"})
    bootstrap_iters: int = field(default=1000, metadata={"help": "resamples for standard errors"})
    output_dir: str | None = field(default=None, metadata={"help": "results.json, per-example JSONL, curve PNG"})
