"""Flags of scripts/icl_eval.py (HfArgumentParser; also fillable from ``--config x.yaml``)."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import InputError


@dataclass
class ICLArguments:
    # Required, but checked after parsing: argparse's own "required" ignores values from --config.
    model: str | None = field(default=None, metadata={
        "help": "(required) model folder or Hub id (AutoModelForCausalLM), or a .gguf file"})
    tasks: str | None = field(default=None, metadata={"help": "(required) comma-separated task names or task YAML paths"})
    gguf_file: str | None = field(default=None, metadata={"help": "GGUF file name inside --model"})
    peft: str | None = field(default=None, metadata={"help": "a peft adapter folder applied on top of --model"})
    num_fewshot: str = field(default="0", metadata={"help": "shots, or a comma list (0,1,4,8) for a curve"})
    seed: int = field(default=1234, metadata={"help": "seeds demonstration sampling and the bootstrap"})
    limit: int | None = field(default=None, metadata={"help": "evaluate only the first n examples per task"})
    batch_size: int = field(default=8, metadata={
        "help": "distinct contexts per forward pass, at most (fewer where padding would cost more); results do not "
                "depend on it"})
    max_length: int | None = field(default=None, metadata={"help": "context window; default: the model's"})
    dtype: str = field(default="float32", metadata={"help": "float32 | bfloat16 | float16"})
    scorer: str = field(default="fast", metadata={"help": "fast | naive (one forward per request)"})
    calibrate: bool = field(default=False, metadata={"help": "also report contextual-calibration accuracy"})
    bootstrap_iters: int = field(default=1000, metadata={"help": "resamples for standard errors"})
    output_dir: str | None = field(default=None, metadata={
        "help": "results.json, per-example JSONL, curve PNG; each (task, shots) is saved when done, and a rerun "
                "skips those saved with the same settings"})
    overwrite_output_dir: bool = field(default=False, metadata={
        "help": "score every (task, shots) again, replacing results saved in --output_dir (even with other settings)"})

    def __post_init__(self):
        for name in ("model", "tasks"):
            if not getattr(self, name):
                raise InputError(f"--{name} is required (on the command line or in the --config file)", field=name)
