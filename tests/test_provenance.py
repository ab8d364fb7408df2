"""One provenance helper: package versions and model cards with Hub metadata."""
from __future__ import annotations

import sys

import yaml

from selfsup.provenance import PACKAGES, command, package_versions, read_card_metrics, write_model_card


def test_versions_name_every_package_and_read_imported_modules():
    import torch
    import transformers

    versions = package_versions()
    assert set(versions) == {"python", *PACKAGES}
    assert versions["torch"] == torch.__version__ and versions["transformers"] == transformers.__version__
    assert versions["selfsup"]


def test_the_command_is_the_script_and_its_arguments(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "scripts").mkdir()
    monkeypatch.setattr(sys, "argv", [str(tmp_path / "scripts" / "finetune.py"), "--task", "glue/rte", "--x", "a b"])
    assert command() == "python scripts/finetune.py --task glue/rte --x 'a b'"


def test_a_card_carries_hub_metadata_and_exact_metrics(tmp_path):
    results = [{"task": "text-classification", "metrics": {"accuracy": 0.123456789, "f1": 1},
                "dataset": {"name": "glue/mrpc", "type": "glue", "config": "mrpc", "split": "validation"}}]
    write_model_card(tmp_path, title="T", summary="S", load="x = 1", pipeline_tag="text-classification",
                     tags=("fine-tuned",), datasets=("glue",), base_model="bert-base-uncased", results=results,
                     command_line="python scripts/finetune.py --task glue/mrpc")
    text = (tmp_path / "README.md").read_text()
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta["library_name"] == "transformers" and meta["base_model"] == "bert-base-uncased"
    assert meta["datasets"] == ["glue"] and "selfsup" in meta["tags"] and meta["pipeline_tag"] == "text-classification"
    assert read_card_metrics(tmp_path) == [{**results[0], "metrics": {"accuracy": 0.123456789, "f1": 1.0}}]
    assert "python scripts/finetune.py --task glue/mrpc" in text
    write_model_card(tmp_path, title="T", summary="S", load="", base_model=str(tmp_path))
    assert "base_model" not in yaml.safe_load((tmp_path / "README.md").read_text().split("---\n")[1])
