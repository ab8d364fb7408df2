"""The shared Accelerate training loop: config, optimizer/schedules, checkpoints, loop."""
from .config import TrainingConfig
from .loop import NonFiniteLossError, Trainer, count_target_tokens, model_loss

__all__ = ["TrainingConfig", "Trainer", "NonFiniteLossError", "count_target_tokens", "model_loss"]
