"""A bad input ends every script with one line naming where it is, and status 2."""
from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from selfsup.cli import run_script

SCRIPTS = sorted((Path(__file__).parents[1] / "scripts").glob("*.py"))


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(f"script_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their annotations through it
    spec.loader.exec_module(module)
    return module


def _bad_input(script: Path, tmp_path: Path) -> tuple[list[str], str]:
    """Arguments that reach an InputError in ``script``, and the location it must name."""
    if script.stem.startswith("convert_"):
        return ["--from-hf", str(tmp_path), "--out", str(tmp_path / "out")], str(tmp_path / "config.json")
    config = tmp_path / "bad.yaml"
    config.write_text("learning_rate: 1e-3\nseed: [1\n")
    return ["--config", str(config)], f"{config}:3:"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_every_script_runs_through_run_script(script):
    tree = ast.parse(script.read_text())
    guards = [n for n in tree.body if isinstance(n, ast.If) and "__main__" in ast.unparse(n.test)]
    assert guards and ast.unparse(guards[0].body[0]) == "run_script(main)", \
        f"{script.name}: its __main__ block must be run_script(main), so input errors end the same way everywhere"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_an_input_error_is_one_line_naming_the_place_and_status_2(script, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SELFSUP_DEBUG", raising=False)
    args, where = _bad_input(script, tmp_path)
    with pytest.raises(SystemExit) as exit_:
        run_script(_load(script).main, args)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {where}"), err
    assert "Traceback" not in err


@pytest.mark.parametrize("how", ["flag", "env"])
def test_debug_adds_the_traceback(how, tmp_path, capsys, monkeypatch):
    script = Path(__file__).parents[1] / "scripts" / "convert_bert.py"
    args, where = _bad_input(script, tmp_path)
    if how == "flag":
        args.append("--debug")
    else:
        monkeypatch.setenv("SELFSUP_DEBUG", "1")
    with pytest.raises(SystemExit) as exit_:
        run_script(_load(script).main, args)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "InputError" in err
    assert err.splitlines()[-1].startswith(f"error: {where}")


def test_a_script_run_as_a_program_exits_2_with_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "SELFSUP_DEBUG"}
    script = Path(__file__).parents[1] / "scripts" / "convert_bert.py"
    proc = subprocess.run([sys.executable, str(script), "--to-hf", str(tmp_path), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 2
    assert proc.stderr == f"error: {tmp_path / 'config.json'}: no config.json: not a Hugging Face model folder\n"
