"""Replaced-token detection along an ELECTRA pretraining run: scripts/pretrain.py's held-out
evaluation (the generator's MLM accuracy; the detector's accuracy, its always-"original"
baseline and ROC AUC) run again on every checkpoint of a finished run, and once more with
uniformly random replacements instead of the generator's samples, which shows whether the
detector learned anything at all when its AUC on the generator's samples stays low.

    python bench/electra_detection.py --run outputs/pretrain-cpu-hour-electra \
        --output bench/results/pays-off/electra/detection.json

The held-out split is rebuilt from the run's summary.json (same corpus, seed and fraction).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from selfsup.modeling.electra import SelfsupBertForReplacedTokenDetection  # noqa: E402
from selfsup.pretrain.data import build_pretraining_data  # noqa: E402
from selfsup.pretrain.instances import InstanceConfig  # noqa: E402
from selfsup.pretrain.masking import MaskingCollator  # noqa: E402
from selfsup.pretrain.objective import histogram_auc, logit_histogram, make_evaluate_fn  # noqa: E402
from selfsup.pretrain.tokenizer import load_tokenizer  # noqa: E402
from selfsup.training.checkpoint import list_checkpoints  # noqa: E402


def random_replacement_auc(model, rows: list[dict], collator, seed: int, batch_size: int) -> float:
    """AUC of the detector when 15% of the text's tokens (never [CLS], [SEP] or padding) are
    replaced by ordinary tokens drawn uniformly, as the collator draws its random ones."""
    generator = torch.Generator().manual_seed(seed)
    pool = collator.ordinary_ids
    replaced_hist = original_hist = 0
    for start in range(0, len(rows), batch_size):
        batch = collator.pad(rows[start:start + batch_size])
        ids, real = batch["input_ids"], batch["attention_mask"].bool()  # the held-out text, unmasked
        pick = (torch.rand(ids.shape, generator=generator) < 0.15) & (batch["word_ids"] >= 0)  # -1: special, pad
        corrupted = torch.where(pick, pool[torch.randint(len(pool), ids.shape, generator=generator)], ids)
        replaced = corrupted != ids
        with torch.no_grad():
            logits = model.discriminator_head(model.bert(corrupted, batch["attention_mask"],
                                                         batch["token_type_ids"]).last_hidden_state)
        replaced_hist = replaced_hist + logit_histogram(logits[real & replaced])
        original_hist = original_hist + logit_histogram(logits[real & ~replaced])
    return histogram_auc(replaced_hist, original_hist)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True, help="output_dir of a finished --objective electra run")
    p.add_argument("--output", type=Path, required=True)
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    summary = json.loads((args.run / "summary.json").read_text())
    data_cfg, training = summary["data"], summary["training"]
    seed = training["seed"]
    tokenizer = load_tokenizer(args.run / "model")
    instances = InstanceConfig(data_cfg["max_seq_length"], data_cfg["short_seq_prob"], data_cfg["nsp_probability"],
                               seed=seed, sentence_objective=data_cfg["sentence_objective"])
    data = build_pretraining_data(data_cfg["corpus"], tokenizer, instances, data_cfg["corpus_layout"],
                                  data_cfg["eval_documents"], allow_eval_splits=data_cfg["allow_eval_splits"],
                                  data_dir=data_cfg["data_dir"])
    collator = MaskingCollator.for_tokenizer(tokenizer, seed=seed, mlm_probability=data_cfg["mlm_probability"],
                                             whole_word_mask=data_cfg["whole_word_mask"],
                                             max_predictions_per_seq=data_cfg["max_predictions_per_seq"])
    batch_size = training["per_device_eval_batch_size"]
    evaluate = make_evaluate_fn(data.eval, collator, batch_size, seed, data_cfg["sentence_objective"])
    rows = [{k: r[k] for k in ("input_ids", "token_type_ids", "word_ids")} for r in data.eval]
    accelerator = Accelerator(cpu=True)
    folders = [(int(c.name.split("-")[1]), c / "model") for c in list_checkpoints(args.run)]
    if not folders or folders[-1][0] != summary["steps"]:  # the final model, unless checkpointed at its step
        folders.append((summary["steps"], args.run / "model"))
    points = []
    for step, folder in folders:
        model = SelfsupBertForReplacedTokenDetection.from_pretrained(folder).eval()
        set_seed(seed)  # the generator's samples: the same draws for every checkpoint
        with torch.no_grad():
            metrics = evaluate(model, accelerator)
        metrics["random_replacement_auc"] = random_replacement_auc(model, rows, collator, seed, batch_size)
        points.append({"step": step, **metrics})
        print(json.dumps(points[-1]), flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"command": " ".join(sys.argv), "run": str(args.run), "points": points},
                                      indent=2))


if __name__ == "__main__":
    main()
