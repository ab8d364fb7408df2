"""Forward+backward time of our encoder vs transformers' BertModel (SDPA), same weights.

    python bench/encoder_speed.py            # BERT-mini: 4 layers, hidden 256, 4 heads
    python bench/encoder_speed.py --layers 2 --hidden 128 --heads 2

Both models get identical weights (converted with selfsup's BERT mapping) and the same
batch; timings are interleaved and the median is reported with the ratio
(transformers time / ours: > 1 means ours is faster).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch
from transformers import BertConfig, BertModel

sys.path.insert(0, str(Path(__file__).parent))
from timing import time_interleaved  # noqa: E402

from selfsup.modeling import SelfsupBertModel  # noqa: E402
from selfsup.modeling.convert_bert import config_from_hf, hf_to_selfsup  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--output", type=Path, default=None, help="write the result as JSON here")
    args = p.parse_args()

    torch.manual_seed(0)
    hf_config = BertConfig(vocab_size=30522, hidden_size=args.hidden, num_hidden_layers=args.layers,
                           num_attention_heads=args.heads, intermediate_size=4 * args.hidden,
                           attn_implementation="sdpa")
    theirs = BertModel(hf_config).train()
    ours = SelfsupBertModel(config_from_hf(hf_config.to_dict())).train()
    ours.load_state_dict(hf_to_selfsup(theirs.state_dict(), args.layers))
    ids = torch.randint(0, 30522, (args.batch, args.seq))
    mask = torch.ones_like(ids)

    def step(model):
        def run():
            model.zero_grad(set_to_none=True)
            model(input_ids=ids, attention_mask=mask).last_hidden_state.float().pow(2).mean().backward()
        return run

    load_before = os.getloadavg()[0]
    times = time_interleaved({"transformers": step(theirs), "selfsup": step(ours)}, args.repeats)
    # The load average says whether other jobs shared the cores; the ratio is fair either way
    # (interleaved), the absolute seconds are not.
    result = {"config": vars(args) | {"output": None}, "threads": torch.get_num_threads(),
              "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]},
              "seconds_per_step": times, "speedup": times["transformers"] / times["selfsup"],
              "torch": torch.__version__}
    print(json.dumps(result, indent=2))
    if args.output:
        args.output.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
