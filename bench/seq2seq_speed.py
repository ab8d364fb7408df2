"""A training step of selfsup-seq2seq vs transformers' BartForConditionalGeneration of the
same dimensions, in the same run.

    python bench/seq2seq_speed.py                     # vocab 8000, d_model 256, 3+3 layers, 4 heads, ffn 1024
    python bench/seq2seq_speed.py --layers 2 --hidden 128 --heads 2 --output bench/results/x.json

A step is zero_grad, forward with labels (mean token cross-entropy), backward and an AdamW
update, both in train mode (dropout 0.1 on hidden states and attention probabilities, none
inside the feed-forward: BART's activation_dropout is 0, ours has none). Both are post-LN
with an embedding LayerNorm, learned positions, GELU, tied input/output embeddings and SDPA
attention; ours runs without its copy head. Same batch (padded sources, -100-padded
labels), steps interleaved, medians; ``speedup`` = BART's time / ours (> 1: ours is faster),
``cpu_speedup`` the same for this process's CPU seconds, which other jobs' load moves less.
The load average before and after is recorded: on shared cores only the ratio means much.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

import torch
from transformers import BartConfig, BartForConditionalGeneration

sys.path.insert(0, str(Path(__file__).parent))
from timing import interleaved_wall_and_cpu  # noqa: E402

from selfsup.modeling.seq2seq import SelfsupSeq2SeqConfig, SelfsupSeq2SeqForConditionalGeneration  # noqa: E402
from selfsup.provenance import package_versions  # noqa: E402


def models(args) -> dict[str, torch.nn.Module]:
    sizes = dict(vocab_size=args.vocab, max_position_embeddings=max(args.src_len, args.tgt_len))
    bart = BartForConditionalGeneration(BartConfig(
        **sizes, d_model=args.hidden, encoder_layers=args.layers, decoder_layers=args.layers,
        encoder_attention_heads=args.heads, decoder_attention_heads=args.heads, encoder_ffn_dim=4 * args.hidden,
        decoder_ffn_dim=4 * args.hidden, activation_function="gelu", dropout=0.1, attention_dropout=0.1,
        activation_dropout=0.0, pad_token_id=0, bos_token_id=2, eos_token_id=3, decoder_start_token_id=2,
        forced_eos_token_id=None, attn_implementation="sdpa"))
    ours = SelfsupSeq2SeqForConditionalGeneration(SelfsupSeq2SeqConfig(
        **sizes, hidden_size=args.hidden, num_hidden_layers=args.layers, num_decoder_layers=args.layers,
        num_attention_heads=args.heads, intermediate_size=4 * args.hidden, hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1, pre_layer_norm=False, attn_implementation="sdpa"))
    return {"transformers": bart.train(), "selfsup": ours.train()}


def batch(args) -> dict[str, torch.Tensor]:
    """Sources of lengths spread over [src_len / 2, src_len], targets over [tgt_len / 2, tgt_len]."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, args.vocab, (args.batch, args.src_len), generator=g)
    labels = torch.randint(5, args.vocab, (args.batch, args.tgt_len), generator=g)
    src_lens = torch.linspace(args.src_len // 2, args.src_len, args.batch).long()
    tgt_lens = torch.linspace(args.tgt_len // 2, args.tgt_len, args.batch).long()
    mask = (torch.arange(args.src_len)[None] < src_lens[:, None]).long()
    return {"input_ids": ids.masked_fill(mask == 0, 0), "attention_mask": mask,
            "labels": labels.masked_fill(torch.arange(args.tgt_len)[None] >= tgt_lens[:, None], -100)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vocab", type=int, default=8000)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=3, help="encoder and decoder layers each")
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--src_len", type=int, default=128)
    p.add_argument("--tgt_len", type=int, default=64)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--output", type=Path, default=None, help="write the result as JSON here")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    nets = models(args)
    data = batch(args)
    optimizers = {name: torch.optim.AdamW(m.parameters(), lr=1e-4) for name, m in nets.items()}

    def step(name):
        model, opt = nets[name], optimizers[name]

        def run():
            opt.zero_grad(set_to_none=True)
            model(**data).loss.backward()
            opt.step()
        return run

    load_before = os.getloadavg()
    samples = interleaved_wall_and_cpu({name: step(name) for name in nets}, args.repeats)
    wall, cpu = ({n: statistics.median(t) for n, t in kind.items()} for kind in samples)
    result = {"config": vars(args) | {"output": None}, "threads": torch.get_num_threads(),
              "parameters": {name: sum(p.numel() for p in m.parameters()) for name, m in nets.items()},
              "target_tokens_per_step": int((data["labels"] != -100).sum()),
              "seconds_per_step": wall, "speedup": wall["transformers"] / wall["selfsup"],
              # CPU seconds of this process: what other jobs' load moves least (it still shares caches)
              "cpu_seconds_per_step": cpu, "cpu_speedup": cpu["transformers"] / cpu["selfsup"],
              "load_average_1_5_15min": {"before": load_before, "after": os.getloadavg()},
              "cpu_count": os.cpu_count(), "versions": package_versions()}
    print(json.dumps(result, indent=2))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
