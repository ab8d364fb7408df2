"""Tokens/second of one full pretraining step (forward, backward, AdamW) of selfsup's
sparse-MLM BERT vs transformers' BertForPreTraining (SDPA), same weights, same batches.

    python bench/pretrain_throughput.py                 # BERT-tiny and BERT-mini
    python bench/pretrain_throughput.py --sizes mini --repeats 20
    python bench/pretrain_throughput.py --device cuda --bf16 --sizes base --batch 128   # on a GPU

Model FLOP utilisation (MFU) = the matmul FLOPs each model needs per step / step time /
the fp32 matmul ceiling measured in the same run. transformers projects every position
onto the vocabulary, so its FLOPs per step are larger; each model's MFU counts its own.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from transformers import BertConfig, BertForPreTraining

sys.path.insert(0, str(Path(__file__).parent))
from timing import matmul_ceiling, time_interleaved  # noqa: E402

from selfsup.modeling import SelfsupBertForPreTraining  # noqa: E402
from selfsup.modeling.bert import prediction_positions  # noqa: E402
from selfsup.modeling.convert_bert import config_from_hf, hf_to_selfsup  # noqa: E402

SIZES = {"tiny": (2, 128, 2), "mini": (4, 256, 4), "base": (12, 768, 12)}  # layers, hidden, heads (Turc et al., 2019)


def matmul_flops(layers: int, hidden: int, seq: int, batch: int, vocab: int, predicted: int,
                 last_queries: int | None = None) -> float:
    """Forward+backward (×3) matmul FLOPs of BERT with the vocabulary projection at
    ``predicted`` positions (all of them for transformers, the masked ones for us) and the
    last layer's queries, output projection and feed-forward at ``last_queries`` positions
    per sequence (default: all; we compute the masked ones and [CLS], padded to the most in
    any row). Only the FLOPs each model performs count: skipped work is not utilisation."""
    tokens, h = batch * seq, hidden
    per_layer = 2 * tokens * 12 * h * h + 2 * 2 * batch * seq * seq * h  # q, k, v, out, 4h FFN; QK^T and PV
    m = seq if last_queries is None else last_queries
    last = 2 * tokens * 2 * h * h + 2 * batch * m * 10 * h * h + 2 * 2 * batch * m * seq * h  # k, v everywhere
    head = 2 * predicted * (h * h + h * vocab)
    return 3 * ((layers - 1) * per_layer + last + head)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", nargs="+", default=["tiny", "mini"], choices=list(SIZES))
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--vocab", type=int, default=30522)
    p.add_argument("--mlm_probability", type=float, default=0.15)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast, as mixed_precision=bf16 trains (GPU)")
    p.add_argument("--output", type=Path, default=None)
    args = p.parse_args()

    dtype = torch.bfloat16 if args.bf16 else torch.float32
    ceiling = matmul_ceiling(n=8192 if args.device != "cpu" else 1024, device=args.device, dtype=dtype)
    results = {"threads": torch.get_num_threads(), "matmul_ceiling_gflops": ceiling / 1e9,
               "device": torch.cuda.get_device_name() if args.device != "cpu" else "cpu",
               "torch": torch.__version__, "config": {k: v for k, v in vars(args).items() if k != "output"}}
    for size in args.sizes:
        layers, hidden, heads = SIZES[size]
        torch.manual_seed(0)
        hf_config = BertConfig(vocab_size=args.vocab, hidden_size=hidden, num_hidden_layers=layers,
                               num_attention_heads=heads, intermediate_size=4 * hidden, attn_implementation="sdpa")
        theirs = BertForPreTraining(hf_config).train()
        ours = SelfsupBertForPreTraining(config_from_hf(hf_config.to_dict())).train()
        ours.load_state_dict(hf_to_selfsup(theirs.state_dict(), layers), strict=False)
        ours.tie_weights()
        theirs.to(args.device), ours.to(args.device)

        g = torch.Generator().manual_seed(1)
        ids = torch.randint(5, args.vocab, (args.batch, args.seq), generator=g)
        masked = torch.rand(args.batch, args.seq, generator=g) < args.mlm_probability
        labels = torch.where(masked, ids, torch.full_like(ids, -100))
        batch = dict(input_ids=ids, attention_mask=torch.ones_like(ids), token_type_ids=torch.zeros_like(ids),
                     labels=labels, next_sentence_label=torch.randint(0, 2, (args.batch,), generator=g))
        batch = {k: v.to(args.device) for k, v in batch.items()}
        autocast = torch.autocast(args.device, dtype=torch.bfloat16, enabled=args.bf16)

        # Equal losses at equal weights (dropout off for the comparison).
        theirs.eval(), ours.eval()
        with torch.no_grad(), autocast:
            loss_theirs, loss_ours = theirs(**batch).loss.item(), ours(**batch).loss.item()
        theirs.train(), ours.train()

        def step(model):
            opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)  # as both trainers use

            def run():
                with autocast:
                    loss = model(**batch).loss
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
                if args.device != "cpu":
                    torch.cuda.synchronize()  # time the work, not its launch
            return run

        times = time_interleaved({"transformers": step(theirs), "selfsup": step(ours)}, args.repeats)
        n_masked = int(masked.sum())
        last_queries = prediction_positions(labels, with_first=True)[0].shape[1]
        flops = {"transformers": matmul_flops(layers, hidden, args.seq, args.batch, args.vocab, args.batch * args.seq),
                 "selfsup": matmul_flops(layers, hidden, args.seq, args.batch, args.vocab, n_masked, last_queries)}
        tokens = args.batch * args.seq
        results[size] = {
            "layers": layers, "hidden": hidden, "heads": heads, "masked_tokens": n_masked,
            "last_layer_queries_per_sequence": last_queries,
            "matmul_gflop_per_step": {k: v / 1e9 for k, v in flops.items()},
            "tokens_per_second": {k: tokens / t for k, t in times.items()},
            "speedup": times["transformers"] / times["selfsup"],
            "mfu": {k: flops[k] / times[k] / ceiling for k in times},
            "loss_at_equal_weights": {"transformers": loss_theirs, "selfsup": loss_ours},
        }
        print(f"{size}: selfsup {tokens / times['selfsup']:.0f} tok/s vs transformers "
              f"{tokens / times['transformers']:.0f} tok/s = {results[size]['speedup']:.2f}x; "
              f"MFU {results[size]['mfu']['selfsup']:.0%} vs {results[size]['mfu']['transformers']:.0%}; "
              f"loss {loss_ours:.5f} vs {loss_theirs:.5f}", flush=True)
    print(json.dumps(results, indent=2))
    if args.output:
        args.output.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
