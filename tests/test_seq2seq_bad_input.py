"""Issue 15's bad input, end to end through the scripts: a noise name or rate that cannot be
used stops denoising pretraining before anything is read; an empty source or target, or one
the tokenizer drops whole, stops fine-tuning naming its file and line."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from selfsup.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(ROOT / "scripts"))
import pretrain_seq2seq  # noqa: E402
import train_seq2seq  # noqa: E402
from tiny_corpus import CORPUS, word_level_tokenizer  # noqa: E402

GOOD = {"src": "the sky is blue .", "tgt": "blue sky"}


@pytest.mark.parametrize("noise, message", [
    ("token_deletion=-0.1", "field 'token_deletion': a noise rate must be in \\[0, 1\\], got -0.1"),
    ("text_infilling=nan", "field 'text_infilling': a noise rate must be in \\[0, 1\\], got nan"),
    ("document_rotation=2", "field 'document_rotation'.*got 2"),
    ("span_masking=0.3", "unknown noise 'span_masking'"),
    ("poisson_lambda=0", "field 'poisson_lambda': must be > 0"),
])
@pytest.mark.parametrize("how", ["flag", "yaml"])
def test_a_bad_noise_stops_pretraining_before_the_corpus_is_read(noise, message, how, tmp_path):
    args = ["--corpus", str(tmp_path / "missing.txt"), "--output_dir", str(tmp_path / "run"), "--report_to", "none"]
    if how == "flag":
        args += ["--noise", noise]
    else:
        (tmp_path / "c.yaml").write_text(f"noise: {noise}\n")
        args += ["--config", str(tmp_path / "c.yaml")]
    with pytest.raises(InputError, match=message):
        pretrain_seq2seq.main(args)


def _files(tmp_path: Path, bad: dict, where: str) -> list[str]:
    rows = {"train": [GOOD] * 4, "validation": [GOOD] * 2}
    rows[where] = rows[where][:1] + [bad] + rows[where][1:]
    for split, split_rows in rows.items():
        (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in split_rows))
    return ["--train_file", str(tmp_path / "train.jsonl"), "--validation_file", str(tmp_path / "validation.jsonl"),
            "--output_dir", str(tmp_path / "run"), "--report_to", "none", "--max_steps", "1",
            "--hidden_size", "16", "--intermediate_size", "32", "--num_attention_heads", "2"]


@pytest.mark.parametrize("bad, field", [({"src": "", "tgt": "x"}, "src"), ({"src": "a b", "tgt": " \t"}, "tgt")])
@pytest.mark.parametrize("where", ["train", "validation"])
def test_an_empty_source_or_target_is_named_by_file_and_line(bad, field, where, tmp_path):
    with pytest.raises(InputError, match=f"{where}.jsonl:2: field '{field}': empty text"):
        train_seq2seq.main(_files(tmp_path, bad, where))


@pytest.mark.parametrize("bad, field", [({"src": "\u200b\x00", "tgt": "x"}, "source"),
                                        ({"src": "the sky", "tgt": "\u200b"}, "target")])
def test_text_the_tokenizer_drops_whole_is_named_by_file_and_line(bad, field, tmp_path):
    # A BERT normalizer removes zero-width and control characters: the row is not blank, but empty to the model.
    word_level_tokenizer(CORPUS).save_pretrained(tmp_path / "tok")
    args = _files(tmp_path, bad, "train") + ["--tokenizer_name", str(tmp_path / "tok")]
    with pytest.raises(InputError, match=f"train.jsonl:2: field '{field}': the {field} has no tokens once tokenized"):
        train_seq2seq.main(args)
