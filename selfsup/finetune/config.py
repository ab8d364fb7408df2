"""Settings of a fine-tuning run (the loop's own are in selfsup.training.TrainingConfig)."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import InputError


@dataclass
class FinetuneConfig:
    task: str = field(default="glue/sst2", metadata={"help": "a registered task, or glue/all"})
    model_name_or_path: str = field(default="", metadata={"help": "a selfsup-bert or Hugging Face encoder folder/id"})
    data_dir: str | None = field(default=None, metadata={"help": "folder holding glue/, squad/, conll2003/ "
                                                                 "(default: shared/data); 'hub' for GLUE online"})
    max_seq_length: int = 128
    doc_stride: int = field(default=32, metadata={"help": "QA/NER: tokens shared by consecutive windows "
                                                            "(HF run_qa uses 128 at max_seq_length 384)"})
    max_query_length: int = 64
    n_best_size: int = 20
    max_answer_length: int = 30
    null_score_diff_threshold: float = 0.0
    label_all_tokens: bool = False
    max_train_samples: int | None = field(default=None, metadata={
        "help": "the first n training examples (default: all)"})
    max_eval_samples: int | None = field(default=None, metadata={"help": "the first n dev examples (default: all)"})
    lora_r: int = field(default=0, metadata={"help": "LoRA rank (0: full fine-tuning)"})
    lora_alpha: int = 16
    lora_dropout: float = 0.1
    lora_target_modules: str | None = field(default=None, metadata={
        "help": "comma-separated module names; default: the attention projections of the backbone"})

    def __post_init__(self):
        # 0 is not "all" (leave the flag out for that) and would train on nothing.
        for name in ("max_train_samples", "max_eval_samples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise InputError(f"--{name} must be at least 1, got {value} (leave it out to use every example)",
                                 field=name)
