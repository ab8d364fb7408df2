"""The names task: a greeting that introduces a name → a reply that repeats it.

"Hi , I am Kuroro ." → "Nice to meet you , Kuroro ." Names are made-up syllable words,
and test names are disjoint from train names, so a model can only answer test examples
by copying from the source. Deterministic given the seed.

``python -m selfsup.tasks.names OUT_DIR [--train 2000 --test 200 --seed 0]`` writes
``train.jsonl`` / ``validation.jsonl`` / ``test.jsonl`` with columns ``src``, ``tgt``.
"""
from __future__ import annotations

import argparse
import random
from pathlib import Path

VERSION = 1
SYLLABLES = [c + v for c in "bdfghjklmnprstvz" for v in "aeiou"]
GREETINGS = [
    ("Hi , I am {n} .", "Nice to meet you , {n} ."),
    ("Hello , my name is {n} .", "Hello {n} , how are you ?"),
    ("Hey there , call me {n} .", "Sure , {n} , what can I do for you ?"),
    ("Good morning ! I am {n} .", "Good morning , {n} !"),
    ("My name is {n} , nice to meet you .", "Nice to meet you too , {n} ."),
    ("This is {n} speaking .", "Hi {n} , thanks for calling ."),
]


def make_names(count: int, rng: random.Random, exclude: set[str] = frozenset()) -> list[str]:
    """``count`` distinct capitalised 2–3 syllable names not in ``exclude``."""
    names: list[str] = []
    seen = set(exclude)
    while len(names) < count:
        name = "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((2, 3)))).capitalize()
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


def generate(n_train: int, n_test: int, seed: int = 0, n_validation: int | None = None) -> dict[str, list[dict]]:
    """{"train", "validation", "test"}: rows ``{"src", "tgt", "name"}``. Validation and
    test names are disjoint from train names (and from each other)."""
    rng = random.Random(seed)
    n_validation = n_test if n_validation is None else n_validation
    train_names = make_names(n_train, rng)
    held_out = make_names(n_validation + n_test, rng, exclude=set(train_names))
    splits = {"train": train_names, "validation": held_out[:n_validation], "test": held_out[n_validation:]}
    out = {}
    for split, names in splits.items():
        rows = []
        for name in names:
            src, tgt = rng.choice(GREETINGS)
            rows.append({"src": src.format(n=name), "tgt": tgt.format(n=name), "name": name})
        out[split] = rows
    return out


def write(out_dir: str | Path, n_train: int = 2000, n_test: int = 200, seed: int = 0) -> dict[str, Path]:
    from selfsup.seq2seq.data import write_pairs
    return {split: write_pairs(Path(out_dir) / f"{split}.jsonl", rows)
            for split, rows in generate(n_train, n_test, seed).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir")
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--test", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    a = parser.parse_args()
    for split, path in write(a.out_dir, a.train, a.test, a.seed).items():
        print(f"{split}\t{path}")


if __name__ == "__main__":
    main()
