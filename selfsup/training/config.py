"""The training-loop settings shared by pretraining, fine-tuning and seq2seq.

Flag names follow the Hugging Face example scripts so users' habits carry over.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import InputError


@dataclass
class TrainingConfig:
    output_dir: str = field(default="outputs/run", metadata={"help": "where checkpoints, logs and the model go"})
    seed: int = 42
    learning_rate: float = 1e-4
    # Adam moves every weight by about the same step whatever its size. A small model's
    # pretrained embedding rows are several times the norm of freshly initialised ones (0.97
    # against 0.23 for the CPU-hour BERT-tiny), so fine-tuning re-purposes them several times
    # more slowly than it trains a fresh table; a ratio > 1 evens that out.
    embedding_lr_ratio: float = field(default=1.0, metadata={
        "help": "the input embedding table's peak LR as a multiple of learning_rate (its schedule is the same)"})
    weight_decay: float = 0.01
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-6  # BERT's value
    max_grad_norm: float = 1.0
    num_train_epochs: float = 1.0
    max_steps: int = field(default=-1, metadata={"help": "optimizer steps; overrides num_train_epochs when > 0"})
    warmup_steps: int = 0
    warmup_ratio: float = 0.0
    lr_scheduler_type: str = field(default="linear", metadata={"help": "linear, cosine or constant (after warmup)"})
    per_device_train_batch_size: int = 32
    per_device_eval_batch_size: int = 64
    gradient_accumulation_steps: int = 1
    # None defers to `accelerate launch` (its config file or --mixed_precision), so a launch
    # config that says bf16 is not silently overridden; plain `python script.py` gets fp32.
    # bf16 matmuls are much slower than fp32 on CPUs without AVX-512 BF16: keep it off there.
    mixed_precision: str | None = field(default=None, metadata={
        "help": "no, fp16 or bf16; default: what accelerate launch was told, else no"})
    logging_steps: int = 10
    eval_strategy: str = field(default="steps", metadata={
        "help": "steps: every eval_steps; epoch: at the end of every epoch (and always at the end of training)"})
    eval_steps: int = field(default=0, metadata={"help": "evaluate every N optimizer steps (0: at the end only)"})
    metric_for_best_model: str | None = field(default=None, metadata={
        "help": "an evaluation metric (e.g. accuracy): the best model so far is kept in output_dir/best"})
    greater_is_better: bool = True
    load_best_model_at_end: bool = field(default=False, metadata={
        "help": "after training, load the weights of output_dir/best (needs metric_for_best_model)"})
    save_steps: int = field(default=0, metadata={"help": "save a resumable checkpoint every N steps (0: never)"})
    save_total_limit: int = 2
    resume_from_checkpoint: str | None = field(default=None, metadata={
        "help": "true: the latest checkpoint in output_dir (an error if there is none); or a checkpoint folder"})
    gradient_checkpointing: bool = field(default=False, metadata={
        "help": "recompute each block's activations in the backward pass: less memory, ~30% more compute"})
    report_to: str = field(default="tensorboard", metadata={"help": "an Accelerate tracker, or 'none'"})
    dataloader_num_workers: int = 0
    cpu_threads: int = field(default=0, metadata={
        "help": "torch threads per process when training on the CPU; 0: the cores this process may run on, shared "
                "among this machine's processes. Chosen here because `accelerate launch` without --cpu sets "
                "OMP_NUM_THREADS=1, which leaves every other core idle"})

    def __post_init__(self):
        if self.eval_strategy not in ("steps", "epoch"):
            raise InputError(f"{self.eval_strategy!r} is not steps or epoch", field="eval_strategy")
        if self.load_best_model_at_end and not self.metric_for_best_model:
            raise InputError("needs --metric_for_best_model", field="load_best_model_at_end")
        if not self.embedding_lr_ratio > 0:
            raise InputError(f"{self.embedding_lr_ratio} must be > 0", field="embedding_lr_ratio")
        if self.gradient_accumulation_steps < 1:
            raise InputError(f"{self.gradient_accumulation_steps} must be >= 1", field="gradient_accumulation_steps")
