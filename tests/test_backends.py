"""The loop under Accelerate's other backends, as far as a CPU machine allows.

DeepSpeed ZeRO-2 runs here (gloo, DeepSpeed's CPU accelerator): two processes of it must
train what one plain process does with the same global batch: same learning rates, same
weights. That covers its accumulation (one engine step per window), its clipping (taken
from max_grad_norm) and saving through get_state_dict. FSDP needs a GPU (Accelerate
refuses it on a CPU); bench/gpu/scale_checks.sh runs it when a GPU is lent.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import IN_CI, _free_port
from safetensors.torch import load_file

HERE = Path(__file__).parent
ROOT = HERE.parent


def _tiny_run(launch: list[str], out: Path, batch: int, accumulation: int, steps: int, env: dict) -> dict:
    cmd = [*launch, str(HERE / "tiny_training.py"), str(out), str(batch), str(accumulation), str(steps)]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads((out / "run.json").read_text())


# cpu-multiprocess.yaml is left out: launched by file it starts ranks that each report one
# process (accelerate 1.15); the multi-process tests use the equivalent flags.
@pytest.mark.parametrize("config_file, processes", [("cpu.yaml", 1)])
def test_the_cpu_launch_configs_train_the_same_weights(tmp_path, accelerate_launch, config_file, processes):
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
              str(ROOT / "configs" / "accelerate" / config_file), "--main_process_port", str(_free_port())]
    run = _tiny_run(launch, tmp_path / "run", batch=16 // processes, accumulation=1, steps=3, env=env)
    plain = _tiny_run(accelerate_launch(1), tmp_path / "plain", batch=16, accumulation=1, steps=3, env=env)
    assert run["num_processes"] == processes and run["learning_rates"] == plain["learning_rates"]
    a, b = load_file(tmp_path / "run" / "weights.safetensors"), load_file(tmp_path / "plain" / "weights.safetensors")
    for key in a:
        assert (a[key] - b[key]).abs().max() < 1e-5, key


def test_deepspeed_zero2_on_two_processes_equals_one_plain_process(tmp_path, accelerate_launch):
    try:
        import deepspeed  # noqa: F401
    except ImportError:
        if IN_CI:
            pytest.fail("deepspeed is not installed (it is in the test extra; CI=true: this must not be skipped)")
        pytest.skip("deepspeed is not installed: pip install deepspeed")
    import sys

    # ACCELERATE_USE_CPU would silently turn DeepSpeed off (Accelerate enables it only off the CPU flag).
    env = {k: v for k, v in os.environ.items() if k != "ACCELERATE_USE_CPU"} | {"OMP_NUM_THREADS": "1"}
    deepspeed_launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
                        str(ROOT / "configs" / "accelerate" / "deepspeed-zero2.yaml"), "--num_processes", "2",
                        "--mixed_precision", "no", "--main_process_port", str(_free_port())]
    # 2 processes x 8 rows x 2 micro-batches = 1 process x 16 rows x 2 micro-batches
    ds = _tiny_run(deepspeed_launch, tmp_path / "ds", batch=8, accumulation=2, steps=4, env=env)
    plain = _tiny_run(accelerate_launch(1), tmp_path / "plain", batch=16, accumulation=2, steps=4, env=env)
    assert ds["num_processes"] == 2
    assert ds["steps"] == plain["steps"] == 4  # one engine step per window, not one per micro-batch
    assert ds["learning_rates"] == plain["learning_rates"]
    a, b = load_file(tmp_path / "ds" / "weights.safetensors"), load_file(tmp_path / "plain" / "weights.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert (a[key] - b[key]).abs().max() < 1e-5, key
    # saved through get_state_dict on every rank into a loadable folder
    assert (tmp_path / "ds" / "model" / "model.safetensors").exists()
