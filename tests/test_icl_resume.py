"""scripts/icl_eval.py saves each (task, shots) result when it is done: an interrupted run,
run again, skips what was saved and ends with the same results as an uninterrupted run;
results saved with other settings are refused."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from selfsup.errors import InputError

sys.path.insert(0, str(Path(__file__).parent))
from test_icl_scoring import byte_tokenizer, tiny_llama  # noqa: E402

_spec = importlib.util.spec_from_file_location("icl_eval_resume",
                                               Path(__file__).parent.parent / "scripts" / "icl_eval.py")
icl_eval = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(icl_eval)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model")
    tiny_llama().save_pretrained(path)
    byte_tokenizer().save_pretrained(path)
    return str(path)


@pytest.fixture
def scored(monkeypatch):
    """(task, shots) of every evaluate_task call; ``fail_at[0]`` = the call number that raises."""
    calls, fail_at, evaluate = [], [None], icl_eval.evaluate_task

    def spy(model, tokenizer, task, k, **kwargs):
        calls.append((task.name, k))
        if len(calls) == fail_at[0]:
            raise KeyboardInterrupt("interrupted")
        return evaluate(model, tokenizer, task, k, **kwargs)
    monkeypatch.setattr(icl_eval, "evaluate_task", spy)
    return calls, fail_at


def flags(model, out, *extra):
    return ["--model", model, "--tasks", "copa,rte", "--num_fewshot", "0,1", "--limit", "3", "--batch_size", "2",
            "--output_dir", str(out), *extra]


def summary(out: Path) -> dict:
    """results.json without what only describes the run (wall time, command, seconds)."""
    results = json.loads((out / "results.json").read_text())
    for by_shots in results["results"].values():
        for metrics in by_shots.values():
            del metrics["seconds"]
    return {"tasks": results["tasks"], "results": results["results"]}


def records(path: Path) -> tuple[list, list[float]]:
    """A samples file's records less their floats, and the floats, in order."""
    rest, floats = [], []

    def walk(value):
        if isinstance(value, float):
            floats.append(value)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, dict):
            for k, v in value.items():
                rest.append(k)
                walk(v)
        else:
            rest.append(value)
    for line in path.read_text().splitlines():
        walk(json.loads(line))
    return rest, floats


def test_an_interrupted_run_resumes_without_rescoring_and_ends_as_an_uninterrupted_one(
        tiny_model, shared_data, tmp_path, scored, capsys):
    calls, fail_at = scored
    icl_eval.main(flags(tiny_model, tmp_path / "whole"))
    assert calls == [("copa", 0), ("copa", 1), ("rte", 0), ("rte", 1)]

    calls.clear()
    fail_at[0] = 2  # the second (task, shots) is interrupted: only the first is saved
    with pytest.raises(KeyboardInterrupt):
        icl_eval.main(flags(tiny_model, tmp_path / "resumed"))
    assert sorted(p.name for p in (tmp_path / "resumed").iterdir()) == ["result_copa_0shot.json",
                                                                        "samples_copa_0shot.jsonl"]

    calls.clear()
    fail_at[0] = None
    capsys.readouterr()
    icl_eval.main(flags(tiny_model, tmp_path / "resumed", "--batch_size", "3"))  # batch size: not a setting
    assert calls == [("copa", 1), ("rte", 0), ("rte", 1)]
    assert "copa 0-shot: already in" in capsys.readouterr().out
    assert summary(tmp_path / "resumed") == summary(tmp_path / "whole")
    # The saved 0-shot file is the whole run's, byte for byte; the rescored ones ran at batch 3
    # instead of 2, whose other padding changes float sums in the last bits: the same records,
    # log-likelihoods equal to 1e-6.
    assert (tmp_path / "resumed" / "samples_copa_0shot.jsonl").read_text() == \
        (tmp_path / "whole" / "samples_copa_0shot.jsonl").read_text()
    for name in ("samples_copa_1shot.jsonl", "samples_rte_1shot.jsonl"):
        (resumed, resumed_floats), (whole, whole_floats) = records(tmp_path / "resumed" / name), records(
            tmp_path / "whole" / name)
        assert resumed == whole and resumed_floats == pytest.approx(whole_floats, rel=1e-6)
    reused = json.loads((tmp_path / "resumed" / "results.json").read_text())["provenance"]["reused"]
    assert reused == ["copa 0-shot"]
    assert not list((tmp_path / "resumed").glob(".*.tmp"))  # no temporary file left behind

    calls.clear()  # everything saved: nothing scored, the model not even loaded
    loaded = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(icl_eval, "load_model", lambda *a: loaded.append(a))
        icl_eval.main(flags(tiny_model, tmp_path / "resumed"))
    assert calls == [] and loaded == []
    assert summary(tmp_path / "resumed") == summary(tmp_path / "whole")


@pytest.mark.parametrize("extra, field", [(["--seed", "5"], "seed"), (["--calibrate"], "calibrate"),
                                          (["--scorer", "naive"], "scorer"), (["--limit", "2"], "limit")])
def test_a_result_saved_with_other_settings_is_refused_unless_overwritten(
        tiny_model, shared_data, tmp_path, scored, extra, field):
    calls, _ = scored
    icl_eval.main(flags(tiny_model, tmp_path))
    calls.clear()
    with pytest.raises(InputError, match=rf"result_copa_0shot\.json: field '{field}'") as e:
        icl_eval.main(flags(tiny_model, tmp_path, *extra))
    assert "--overwrite_output_dir" in str(e.value) and calls == []  # refused before scoring anything
    icl_eval.main(flags(tiny_model, tmp_path, *extra, "--overwrite_output_dir"))
    assert calls == [("copa", 0), ("copa", 1), ("rte", 0), ("rte", 1)]
    saved = json.loads((tmp_path / "result_rte_1shot.json").read_text())["settings"]
    assert saved[field] == {"seed": 5, "calibrate": True, "scorer": "naive", "limit": 2}[field]


def test_a_changed_task_spec_is_refused(tiny_model, shared_data, tmp_path, scored):
    spec = tmp_path / "copa.yaml"
    original = (Path(__file__).parent.parent / "tasks" / "icl" / "copa.yaml").read_text()
    spec.write_text(original)
    run = ["--model", tiny_model, "--tasks", str(spec), "--limit", "2", "--output_dir", str(tmp_path / "out")]
    icl_eval.main(run)
    spec.write_text(original.replace('prompt: "{premise} {connector}"', 'prompt: "{premise}, {connector}"'))
    with pytest.raises(InputError, match=r"result_copa_0shot\.json: field 'task\.prompt'"):
        icl_eval.main(run)


def test_a_model_retrained_at_the_same_path_is_refused(tiny_model, shared_data, tmp_path, scored):
    import shutil

    from safetensors.torch import load_file, save_file

    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    run = ["--model", str(model), "--tasks", "copa", "--limit", "2", "--output_dir", str(tmp_path / "out")]
    icl_eval.main(run)
    weights = model / "model.safetensors"
    state = load_file(weights)
    name = next(iter(state))
    state[name] = state[name] + 1  # "retrained": same path, same size, other weights
    save_file(state, weights, metadata={"format": "pt"})
    with pytest.raises(InputError, match=r"result_copa_0shot\.json: field 'weights_sha256'"):
        icl_eval.main(run)


@pytest.mark.parametrize("flag,value,message", [("limit", 0, "--limit must be at least 1, got 0"),
                                                ("limit", -3, "--limit must be at least 1"),
                                                ("dtype", "float64", "--dtype must be one of float32, bfloat16, "
                                                                     "float16, got 'float64'")])
def test_limits_and_dtypes_that_cannot_run_are_refused_naming_the_flag(flag, value, message):
    from selfsup.icl.config import ICLArguments

    with pytest.raises(InputError, match=message):
        ICLArguments(model="m", tasks="copa", **{flag: value})


def test_a_missing_model_folder_is_named_as_such(tmp_path):
    from selfsup.icl.models import load_model

    with pytest.raises(InputError, match="not found locally, and not a valid Hub id"):
        load_model(str(tmp_path / "runs" / "gpt" / "final"))
