"""Flags of scripts/icl_eval.py (HfArgumentParser; also fillable from ``--config x.yaml``)."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import InputError
from .models import check_dtype


@dataclass
class ICLArguments:
    # Required, but checked after parsing: argparse's own "required" ignores values from --config.
    model: str | None = field(default=None, metadata={
        "help": "(required) model folder or Hub id (AutoModelForCausalLM), or a .gguf file"})
    tasks: str | None = field(default=None, metadata={
        "help": "(required) comma-separated task, group or tag names, task YAML paths (selfsup's or "
                "lm-evaluation-harness's), or folders of task YAML"})
    include_path: str | None = field(default=None, metadata={
        "help": "folder(s) of user task YAML, comma-separated, searched for --tasks names before the built-in tasks"})
    gguf_file: str | None = field(default=None, metadata={"help": "GGUF file name inside --model"})
    peft: str | None = field(default=None, metadata={"help": "a peft adapter folder applied on top of --model"})
    num_fewshot: str | None = field(default=None, metadata={
        "help": "shots, or a comma list (0,1,4,8) for a curve; default: each task's num_fewshot, else 0"})
    apply_chat_template: bool = field(default=False, metadata={
        "help": "render prompts with the tokenizer's chat template (instruct models), as lm-eval's flag"})
    system_instruction: str | None = field(default=None, metadata={"help": "a system message before every prompt"})
    # nargs/const: a bare flag means true, as lm-eval's (HfArgumentParser gives them only to non-None defaults)
    fewshot_as_multiturn: bool | None = field(default=None, metadata={
        "nargs": "?", "const": True,
        "help": "demonstrations as user/assistant turns (default with --apply_chat_template; needs it)"})
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
        if self.limit is not None and self.limit < 1:  # 0 would score nothing and divide by it
            raise InputError(f"--limit must be at least 1, got {self.limit} (leave it out to score every example)",
                             field="limit")
        check_dtype(self.dtype)
        # lm-eval's rule: multiturn demonstrations by default under a chat template, and only there.
        if self.fewshot_as_multiturn is None:
            self.fewshot_as_multiturn = self.apply_chat_template
        elif self.fewshot_as_multiturn and not self.apply_chat_template:
            raise InputError("--fewshot_as_multiturn needs --apply_chat_template", field="fewshot_as_multiturn")
