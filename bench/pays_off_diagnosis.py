"""Why does the CPU-hour model not beat random init on SST-2? Three measurements, one command.

    python bench/pays_off_diagnosis.py --pretrained outputs/pretrain-mix \
        --work_dir outputs/pays-off-diagnosis --output bench/results/pays-off/diagnosis.json

bench/pretraining_pays_off.py finds (b), the model pretrained for an hour on general prose,
below (a), the same architecture from random init, on SST-2 (and above it on STS-B and CoLA).
This script asks where the loss comes from:

1. **Embedding geometry.** Masked-LM training places a word where its contexts place it, and
   antonyms share contexts ("a ___ movie"). The cosine of sentiment antonym pairs in (a)'s
   and (b)'s word embeddings, and the embeddings' anisotropy (the mean pairwise cosine: 0 for
   random directions).
2. **Linear probes** on frozen features of SST-2 (the [CLS] state, the pooler, the mean of the
   last layer, the mean of the input embeddings): what each model knows before fine-tuning.
   Logistic regression on the first --probe_train training sentences, its L2 strength chosen
   on the next 1,000, accuracy on dev.
3. **Which half hurts.** SST-2 fine-tuning (bench/pretraining_pays_off.py's budget and SST-2
   learning rate) of four models per seed: (a), (b), (b)'s embeddings with (a)'s blocks, and
   (a)'s embeddings with (b)'s blocks (embeddings: word, position and segment tables; blocks:
   everything else, pooler included).

Writes one JSON; not run in CI.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import pretraining_pays_off as pays_off  # noqa: E402

import selfsup  # noqa: E402,F401
from selfsup.finetune.tasks import get_finetune_task  # noqa: E402

# Single-piece sentiment antonyms in the recipe's 8,000-piece vocabulary (pairs with a piece
# missing from a given vocabulary are skipped and listed).
ANTONYMS = [("good", "bad"), ("great", "terrible"), ("funny", "boring"), ("best", "worst"), ("love", "hate"),
            ("beautiful", "ugly"), ("interesting", "dull"), ("happy", "sad"), ("better", "worse"), ("well", "poorly")]


def geometry(model_dir: Path) -> dict:
    from transformers import AutoModel, AutoTokenizer

    tokenizer, model = AutoTokenizer.from_pretrained(model_dir), AutoModel.from_pretrained(model_dir)
    table = model.get_input_embeddings().weight.detach()
    unit = torch.nn.functional.normalize(table, dim=-1)
    n = len(unit)
    # mean over pairs i != j of cos(i, j), from the norm of the summed unit vectors
    mean_cos = ((unit.sum(0).norm() ** 2 - n) / (n * (n - 1))).item()
    vocab = tokenizer.get_vocab()
    pairs, missing = {}, []
    for a, b in ANTONYMS:
        if a in vocab and b in vocab:
            pairs[f"{a}/{b}"] = (unit[vocab[a]] @ unit[vocab[b]]).item()
        else:
            missing.append(f"{a}/{b}")
    return {"mean_pairwise_cosine": mean_cos, "mean_norm": table.norm(dim=-1).mean().item(),
            "antonym_cosine": pairs, "antonym_cosine_mean": statistics.mean(pairs.values()),
            "pairs_not_single_pieces": missing}


@torch.no_grad()
def features(model_dir: Path, *texts: list[str]) -> list[dict[str, torch.Tensor]]:
    """The four kinds of frozen features of each list of texts, from one load of the model."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer, model = AutoTokenizer.from_pretrained(model_dir), AutoModel.from_pretrained(model_dir).eval()
    return [_features(tokenizer, model, t) for t in texts]


def _features(tokenizer, model, texts: list[str]) -> dict[str, torch.Tensor]:
    out = {"cls": [], "pooler": [], "mean_last_layer": [], "mean_embeddings": []}
    for i in range(0, len(texts), 128):
        batch = tokenizer(texts[i:i + 128], padding=True, truncation=True, max_length=128, return_tensors="pt")
        o = model(batch["input_ids"], batch["attention_mask"], output_hidden_states=True)
        mask = batch["attention_mask"].unsqueeze(-1).float()
        out["cls"].append(o.last_hidden_state[:, 0])
        out["pooler"].append(o.pooler_output)
        out["mean_last_layer"].append((o.last_hidden_state * mask).sum(1) / mask.sum(1))
        out["mean_embeddings"].append((o.hidden_states[0] * mask).sum(1) / mask.sum(1))
    return {k: torch.cat(v) for k, v in out.items()}


def probe(train: torch.Tensor, y_train: torch.Tensor, held: torch.Tensor, y_held: torch.Tensor,
          dev: torch.Tensor, y_dev: torch.Tensor) -> dict:
    """L2-regularised logistic regression (LBFGS) on standardised features; strength chosen on held."""
    mu, sd = train.mean(0), train.std(0) + 1e-6
    train, held, dev = ((x - mu) / sd for x in (train, held, dev))
    best = None
    for l2 in (1e-4, 1e-3, 1e-2, 1e-1):
        torch.manual_seed(0)
        linear = torch.nn.Linear(train.shape[1], 2)
        optimizer = torch.optim.LBFGS(linear.parameters(), max_iter=500)

        def closure():
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(linear(train), y_train) + l2 * linear.weight.pow(2).sum()
            loss.backward()
            return loss

        optimizer.step(closure)
        with torch.no_grad():
            held_acc = (linear(held).argmax(-1) == y_held).float().mean().item()
            dev_acc = (linear(dev).argmax(-1) == y_dev).float().mean().item()
        if best is None or held_acc > best["held_out_accuracy"]:
            best = {"l2": l2, "held_out_accuracy": held_acc, "dev_accuracy": dev_acc}
    return best


def hybrid(embeddings_from: Path, blocks_from: Path, out: Path) -> Path:
    """A selfsup-bert pretraining model whose embedding tables come from one folder, the rest from another."""
    from transformers import AutoModelForPreTraining, AutoTokenizer

    if (out / "model.safetensors").exists():
        return out
    emb = AutoModelForPreTraining.from_pretrained(embeddings_from).state_dict()
    model = AutoModelForPreTraining.from_pretrained(blocks_from)
    state = model.state_dict()
    taken = [k for k in state if ".embeddings." in k]
    if not taken:
        raise RuntimeError(f"{blocks_from}: no embedding tensors found (names changed?)")
    state.update({k: emb[k] for k in taken})
    model.load_state_dict(state)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(blocks_from).save_pretrained(out)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pretrained", type=Path, required=True, help="the pretraining output_dir of (b)")
    p.add_argument("--data_dir", type=Path, default=None, help="folder holding glue/ (default: shared/data)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--learning_rate", type=float, default=1e-3, help="SST-2's rate chosen for (a) and (b)")
    p.add_argument("--epochs", type=float, default=3)
    p.add_argument("--max_train_samples", type=int, default=2000)
    p.add_argument("--probe_train", type=int, default=8000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--work_dir", type=Path, default=Path("outputs/pays-off-diagnosis"))
    p.add_argument("--output", type=Path, default=Path("bench/results/pays-off/diagnosis.json"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    general = args.pretrained / "model"
    randoms = pays_off.random_inits(general, args.seeds, args.work_dir)
    report = {"command": " ".join(sys.argv), "pretrained": str(general)}

    report["geometry"] = {"random": geometry(randoms[args.seeds[0]]), "pretrained": geometry(general)}
    print(json.dumps(report["geometry"], indent=1), flush=True)

    sst2 = get_finetune_task("glue/sst2")
    train_rows = sst2.read(args.data_dir, "train")[:args.probe_train + 1000]
    dev_rows = sst2.read(args.data_dir, "validation")
    texts, labels = [r["text"] for r in train_rows], torch.tensor([r["label"] for r in train_rows])
    dev_texts, dev_labels = [r["text"] for r in dev_rows], torch.tensor([r["label"] for r in dev_rows])
    n = args.probe_train
    report["probes"] = {}
    for name, folder in (("random", randoms[args.seeds[0]]), ("pretrained", general)):
        train_f, dev_f = features(folder, texts, dev_texts)
        report["probes"][name] = {k: probe(train_f[k][:n], labels[:n], train_f[k][n:], labels[n:], dev_f[k],
                                           dev_labels) for k in train_f}
        print(name, {k: round(100 * v["dev_accuracy"], 1) for k, v in report["probes"][name].items()}, flush=True)

    starts = {"random": lambda s: randoms[s], "pretrained": lambda s: general,
              "pretrained_embeddings_random_blocks": lambda s: hybrid(general, randoms[s], args.work_dir / f"emb-{s}"),
              "random_embeddings_pretrained_blocks": lambda s: hybrid(randoms[s], general, args.work_dir / f"blk-{s}")}
    jobs = [{"model_kind": kind, "task": "glue/sst2", "lr": args.learning_rate, "seed": s, "model": str(start(s)),
             "epochs": args.epochs, "max_train_samples": args.max_train_samples, "threads": args.threads,
             "data_dir": str(args.data_dir) if args.data_dir else None,
             "out": str(args.work_dir / "finetune" / kind / f"seed{s}")}
            for kind, start in starts.items() for s in args.seeds]
    results = pays_off.run_jobs(jobs, args.jobs)
    report["part_swap"] = {"budget": {"task": "glue/sst2", "lr": args.learning_rate, "epochs": args.epochs,
                                      "max_train_samples": args.max_train_samples, "seeds": args.seeds}}
    for kind in starts:
        values = [100 * r["metrics"]["best"]["accuracy"] for r in results if r["model_kind"] == kind]
        report["part_swap"][kind] = {"values": values, "mean": statistics.mean(values),
                                     "std": statistics.stdev(values) if len(values) > 1 else 0.0}
        print(kind, f"{report['part_swap'][kind]['mean']:.1f} ± {report['part_swap'][kind]['std']:.1f}", flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
