"""SQuAD v1.1 and v2.0 (Rajpurkar et al., 2016; 2018) from the official json files.

Local files: ``<data_dir>/squad/{train,dev}-v1.1.json`` and ``…-v2.0.json``. shared/data
has only dev-v1.1; the ``squad_dev_split`` task splits it by article (first 38 articles to
train, last 10 to evaluate) so SQuAD can be trained and scored offline.
"""
from __future__ import annotations

import json
from pathlib import Path

from selfsup.errors import InputError
from selfsup.finetune.readers import read_squad
from selfsup.finetune.tasks import FinetuneTask, register
from selfsup.pretrain.corpus import split_sentences
from selfsup.resources import shared_data_dir


def _root(data_dir) -> Path:
    root = Path(data_dir) if data_dir is not None else shared_data_dir()
    if root is None:
        raise InputError("squad: no data_dir and no shared/data folder; pass --data_dir")
    return root / "squad"


def _read(version: str, data_dir, split: str) -> list[dict]:
    return read_squad(_root(data_dir) / f"{'train' if split == 'train' else 'dev'}-v{version}.json")


def _read_dev_split(data_dir, split: str, train_articles: int = 38) -> list[dict]:
    examples = read_squad(_root(data_dir) / "dev-v1.1.json")
    titles = list(dict.fromkeys(e["title"] for e in examples))
    keep = set(titles[:train_articles]) if split == "train" else set(titles[train_articles:])
    return [e for e in examples if e["title"] in keep]


def _articles(path: Path) -> list[dict]:
    if not path.exists():
        raise InputError("file not found", path=path)
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))["data"]
    except (json.JSONDecodeError, KeyError) as e:
        raise InputError(f"not a SQuAD file ({e})", path=path) from e


def _contexts(articles: list[dict]) -> list[list[str]]:
    """An article's contexts, split into sentences: questions and answers are never read."""
    return [[s for p in a.get("paragraphs", []) for s in split_sentences(p.get("context", ""))] for a in articles]


def _read_text(version: str, data_dir, split: str) -> list[list[str]]:
    return _contexts(_articles(_root(data_dir) / f"{'train' if split == 'train' else 'dev'}-v{version}.json"))


def _read_dev_split_text(data_dir, split: str, train_articles: int = 38) -> list[list[str]]:
    articles = _articles(_root(data_dir) / "dev-v1.1.json")
    return _contexts(articles[:train_articles] if split == "train" else articles[train_articles:])


register(FinetuneTask("squad/v1.1", "span", ("exact_match", "f1"), read=lambda d, s: _read("1.1", d, s),
                  main_metric="f1", version="squad-1.1", options={"version_2_with_negative": False},
                  read_text=lambda d, s: _read_text("1.1", d, s)))
register(FinetuneTask("squad/v2.0", "span", ("exact_match", "f1"), read=lambda d, s: _read("2.0", d, s),
                  main_metric="f1", version="squad-2.0", options={"version_2_with_negative": True},
                  read_text=lambda d, s: _read_text("2.0", d, s)))
register(FinetuneTask("squad/dev_split", "span", ("exact_match", "f1"), read=_read_dev_split, main_metric="f1",
                  version="squad-1.1-dev-38-10", options={"version_2_with_negative": False},
                  read_text=_read_dev_split_text))
