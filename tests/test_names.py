"""Names that say which is which: the ICL and fine-tuning task specs and lookups are told apart
by name, registries share one case style, GLUE tasks are keyword specs, and no ICL module
reaches into another's private names (what two modules share is public in one place)."""
from __future__ import annotations

import ast
from pathlib import Path

import selfsup.finetune.tasks as finetune_tasks
import selfsup.icl.tasks as icl_tasks

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [p for folder in ("selfsup", "tasks", "scripts", "bench") for p in sorted((ROOT / folder).rglob("*.py"))]


def test_icl_and_finetune_tasks_have_their_own_class_and_lookup():
    copa = icl_tasks.get_icl_task("copa")
    assert type(copa) is icl_tasks.ICLTask and copa.name == "copa"
    assert type(finetune_tasks.get_finetune_task("glue/rte")) is finetune_tasks.FinetuneTask
    # The old shared names are gone, so an import says which kind of task it means.
    for old in ("TaskSpec", "get_task"):
        assert not hasattr(icl_tasks, old) and not hasattr(finetune_tasks, old)
    public = lambda m: {n for n in vars(m) if not n.startswith("_") and getattr(vars(m)[n], "__module__", "")  # noqa: E731
                        == m.__name__}
    assert public(icl_tasks) & public(finetune_tasks) == set()


def _module_level_registries(path: Path) -> list[str]:
    names = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
        if isinstance(value, ast.Call) and getattr(value.func, "id", None) == "Registry":
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names += [t.id for t in targets if isinstance(t, ast.Name)]
    return names


def test_every_registry_is_named_in_lower_case():
    registries = {f"{p.relative_to(ROOT)}:{name}" for p in SOURCES for name in _module_level_registries(p)}
    assert {"selfsup/icl/tasks.py:icl_tasks", "selfsup/icl/tasks.py:icl_formats", "selfsup/icl/metrics.py:icl_metrics",
            "selfsup/finetune/tasks.py:finetune_tasks", "selfsup/training/optim.py:schedules"} <= registries
    assert sorted(r for r in registries if not r.split(":")[1].islower()) == []


def test_glue_tasks_are_keyword_specs():
    tree = ast.parse((ROOT / "tasks" / "glue.py").read_text(encoding="utf-8"))
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "GlueTask"]
    from selfsup.tasks.glue import GLUE, GlueTask
    assert len(calls) == len(GLUE) >= 9 and all(isinstance(t, GlueTask) for t in GLUE.values())
    assert all(not c.args and all(k.arg for k in c.keywords) for c in calls)


def test_no_icl_module_imports_another_modules_private_names():
    # The pad helpers were scoring's _pad and _device, imported by generation; now selfsup.icl.padding.
    # (Elsewhere, pretrain/starting_model.py still imports convert_bert's _HEADS and _DERIVED.)
    private = []
    for path in [p for p in SOURCES if "icl" in p.relative_to(ROOT).as_posix()]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                private += [f"{path.relative_to(ROOT)}: {node.module}.{a.name}" for a in node.names
                            if a.name.startswith("_") and not a.name.startswith("__")]
    assert private == []
