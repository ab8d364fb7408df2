"""AdamW with BERT's parameter groups and warmup + decay schedules in optimizer steps."""
from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import InputError
from ..registry import Registry

schedules: Registry = Registry("lr_scheduler_type")


@schedules.register("linear")
def _linear(step: int, warmup: int, total: int) -> float:
    return max(0.0, (total - step) / max(1, total - warmup))


@schedules.register("cosine")
def _cosine(step: int, warmup: int, total: int) -> float:
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


@schedules.register("constant")
def _constant(step: int, warmup: int, total: int) -> float:
    return 1.0


def lr_lambda(kind: str, warmup: int, total: int):
    """Multiplier of the peak LR after ``step`` optimizer steps: linear warmup, then ``kind``."""
    decay = schedules.get(kind)

    def f(step: int) -> float:
        return step / max(1, warmup) if step < warmup else decay(step, warmup, total)
    return f


def parameter_groups(model: nn.Module, weight_decay: float, embedding_lr: float | None = None) -> list[dict]:
    """No weight decay on biases and normalisation weights (as in BERT). With ``embedding_lr``,
    the input embedding table gets a third group of its own at that peak rate."""
    table = None
    if embedding_lr is not None:
        get = getattr(model, "get_input_embeddings", None)
        embeddings = get() if get is not None else None
        table = embeddings.weight if embeddings is not None else None
        if table is None:
            raise InputError(f"{type(model).__name__} has no input embedding table to give its own rate",
                             field="embedding_lr_ratio")
        if not table.requires_grad:
            raise InputError("the input embeddings are frozen (LoRA, or frozen on purpose): no rate to set",
                             field="embedding_lr_ratio")
    decay, no_decay, embedding = [], [], []
    norm_params = {id(p) for m in model.modules() if isinstance(m, (nn.LayerNorm, nn.GroupNorm))
                   for p in m.parameters(recurse=False)}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p is table:
            embedding.append(p)
        else:
            (no_decay if p.ndim < 2 or id(p) in norm_params or name.endswith("bias") else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if embedding:
        groups.append({"params": embedding, "weight_decay": weight_decay, "lr": embedding_lr})
    return groups


def build_optimizer(model: nn.Module, config, total_steps: int):
    # fused: one kernel for all parameters instead of a Python loop over them; measured 5.5x
    # faster per step on a 30522x256 embedding on CPU (transformers' Trainer fuses too).
    embedding_lr = config.learning_rate * config.embedding_lr_ratio if config.embedding_lr_ratio != 1 else None
    groups = parameter_groups(model, config.weight_decay, embedding_lr)
    optimizer = torch.optim.AdamW(groups, lr=config.learning_rate,
                                  betas=(config.adam_beta1, config.adam_beta2), eps=config.adam_epsilon, fused=True)
    warmup = config.warmup_steps or int(math.ceil(config.warmup_ratio * total_steps))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(config.lr_scheduler_type, warmup, total_steps))
    return optimizer, scheduler
