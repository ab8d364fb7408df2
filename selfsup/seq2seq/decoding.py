"""Greedy, beam and sampled decoding against a small step interface.

A *stepper* holds the source side and the decoder state for ``N`` rows:
``step(tokens) -> log_probs`` takes every row's tokens so far (N, t) and returns the
next-token log-probabilities (N, vocab'), vocab' including extended copy ids;
``reorder(index)`` keeps/duplicates rows (beam search). :class:`ModelStepper` wraps a
``selfsup-seq2seq`` model, with or without its KV cache.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class GenerationArguments:
    """Flag names as in ``transformers.GenerationConfig``."""

    max_new_tokens: int = 64
    do_sample: bool = False
    num_beams: int = 1
    length_penalty: float = 1.0  # score / length**length_penalty; > 0 favours longer outputs
    early_stopping: bool = True  # stop a beam search once num_beams hypotheses have ended
    no_repeat_ngram_size: int = 0
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    sampling_seed: int = 0


class ModelStepper:
    """Decoder steps of ``model`` for a batch of sources repeated ``expand`` times
    (row ``b·expand + j`` is copy j of source b). ``use_cache`` feeds only the newest
    token and reuses keys/values (and the copy keys and coverage); without it every step
    re-runs the decoder over the whole prefix — the reference the cache must equal."""

    def __init__(self, model, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 source_extended_ids: torch.Tensor | None = None, expand: int = 1, use_cache: bool = True):
        from selfsup.modeling.seq2seq import Seq2SeqCache
        self.model = model
        rep = lambda t: t.repeat_interleave(expand, 0)  # noqa: E731
        self.attention_mask = rep(attention_mask)
        self.source_extended_ids = rep(source_extended_ids if source_extended_ids is not None else input_ids)
        self.memory = rep(model.encode(input_ids, attention_mask))
        self.use_cache = use_cache
        self.cache = Seq2SeqCache() if use_cache else None

    @property
    def device(self) -> torch.device:
        return self.memory.device

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        vocab = self.model.config.vocab_size
        tokens = tokens.masked_fill(tokens >= vocab, self.model.config.unk_token_id)
        new = tokens[:, -1:] if self.use_cache and self.cache.get_seq_length() else tokens
        out = self.model(encoder_outputs=self.memory, attention_mask=self.attention_mask,
                         source_extended_ids=self.source_extended_ids, decoder_input_ids=new,
                         past_key_values=self.cache, use_cache=self.use_cache)
        logits = out.logits[:, -1].float()
        return logits if self.model.config.use_copy else logits.log_softmax(-1)

    def reorder(self, index: torch.Tensor) -> None:
        self.memory = self.memory.index_select(0, index)
        self.attention_mask = self.attention_mask.index_select(0, index)
        self.source_extended_ids = self.source_extended_ids.index_select(0, index)
        if self.cache is not None:
            self.cache.reorder(index)


def ban_repeated_ngrams(log_probs: torch.Tensor, generated: torch.Tensor, n: int) -> torch.Tensor:
    """Set to -inf every token that would complete an n-gram already in that row of
    ``generated`` (N, t) (the start token excluded). ``log_probs``: (N, vocab')."""
    if n <= 0 or generated.shape[1] < n - 1:
        return log_probs
    log_probs = log_probs.clone()
    for row, seq in enumerate(generated.tolist()):
        prefix = tuple(seq[len(seq) - (n - 1):]) if n > 1 else ()
        banned = {seq[i + n - 1] for i in range(len(seq) - n + 1) if tuple(seq[i:i + n - 1]) == prefix}
        if banned:
            log_probs[row, list(banned)] = float("-inf")
    return log_probs


def _trim(rows: list[list[int]], eos_id: int) -> list[list[int]]:
    return [r[: r.index(eos_id) + 1] if eos_id in r else r for r in rows]


def _filter_top_k_top_p(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    if top_k > 0:
        kth = logits.topk(min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        # drop a token when the tokens before it already reach top_p (the first always stays)
        drop_sorted = (cum - sorted_logits.softmax(-1)) >= top_p
        logits = logits.masked_fill(drop_sorted.scatter(1, order, drop_sorted), float("-inf"))
    return logits


def greedy_or_sample(stepper, batch_size: int, start_id: int, eos_id: int, args: GenerationArguments
                     ) -> list[list[int]]:
    """Greedy (``do_sample=False``) or ancestral sampling with temperature, top-k and
    top-p. Returns each row's generated ids, up to and including ``[EOS]``."""
    generator = torch.Generator(device="cpu").manual_seed(args.sampling_seed)
    tokens = torch.full((batch_size, 1), start_id, dtype=torch.long, device=stepper.device)
    done = torch.zeros(batch_size, dtype=torch.bool, device=stepper.device)
    for _ in range(args.max_new_tokens):
        log_probs = ban_repeated_ngrams(stepper.step(tokens), tokens[:, 1:], args.no_repeat_ngram_size)
        if args.do_sample:
            logits = _filter_top_k_top_p(log_probs / max(args.temperature, 1e-6), args.top_k, args.top_p)
            nxt = torch.multinomial(logits.softmax(-1).cpu(), 1, generator=generator).squeeze(1).to(tokens.device)
        else:
            nxt = log_probs.argmax(-1)
        nxt = nxt.masked_fill(done, eos_id)
        tokens = torch.cat([tokens, nxt[:, None]], 1)
        done |= nxt == eos_id
        if bool(done.all()):
            break
    return _trim(tokens[:, 1:].tolist(), eos_id)


def beam_search(stepper, batch_size: int, start_id: int, eos_id: int, args: GenerationArguments
                ) -> list[list[int]]:
    """Beam search over ``num_beams`` rows per source (the stepper must be built with
    ``expand=num_beams``). A finished hypothesis scores ``sum log p / len**length_penalty``
    (len = generated tokens including ``[EOS]``). ``early_stopping=True`` stops a source
    once ``num_beams`` hypotheses have ended; ``False`` stops when the best live beam
    cannot beat the worst kept one at its current length (transformers' heuristic)."""
    k = args.num_beams
    device = stepper.device
    tokens = torch.full((batch_size * k, 1), start_id, dtype=torch.long, device=device)
    scores = torch.zeros(batch_size, k, device=device)
    scores[:, 1:] = float("-inf")  # all beams start identical: expand only the first
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(batch_size)]
    done = [False] * batch_size
    for _ in range(args.max_new_tokens):
        log_probs = ban_repeated_ngrams(stepper.step(tokens), tokens[:, 1:], args.no_repeat_ngram_size)
        vocab = log_probs.shape[-1]
        candidates = (scores.view(-1, 1) + log_probs).view(batch_size, k * vocab)
        top_scores, top_idx = candidates.topk(2 * k, dim=1)
        top_scores, top_idx = top_scores.tolist(), top_idx.tolist()
        length = tokens.shape[1]  # generated tokens after this step, [EOS] included
        parents, next_tokens, next_scores = [], [], []
        for b in range(batch_size):
            live = []
            if not done[b]:
                for rank, (s, idx) in enumerate(zip(top_scores[b], top_idx[b])):
                    beam, tok = divmod(idx, vocab)
                    if s == float("-inf"):
                        break
                    if tok == eos_id:
                        if rank < k:  # an [EOS] ranked below the beam width does not count
                            hyp = tokens[b * k + beam, 1:].tolist() + [eos_id]
                            finished[b].append((s / length ** args.length_penalty, hyp))
                    else:
                        live.append((s, b * k + beam, tok))
                    if len(live) == k:
                        break
                finished[b] = sorted(finished[b], key=lambda h: -h[0])[:k]
                if len(finished[b]) == k:
                    best_live = live[0][0] / length ** args.length_penalty if live else float("-inf")
                    done[b] = args.early_stopping or best_live <= finished[b][-1][0]
            if done[b] or not live:
                done[b] = True
                live = [(float("-inf"), b * k, eos_id)] * k
            live += [(float("-inf"), live[0][1], eos_id)] * (k - len(live))
            for s, parent, tok in live:
                next_scores.append(s)
                parents.append(parent)
                next_tokens.append(tok)
        if all(done):
            break
        index = torch.tensor(parents, device=device)
        tokens = torch.cat([tokens.index_select(0, index), torch.tensor(next_tokens, device=device)[:, None]], 1)
        scores = torch.tensor(next_scores, device=device).view(batch_size, k)
        stepper.reorder(index)
    out = []
    for b in range(batch_size):
        hyps = list(finished[b])
        if not done[b]:  # ran out of max_new_tokens: live beams compete as they are
            for j in range(k):
                s = float(scores[b, j])
                if s > float("-inf"):
                    hyps.append((s / (tokens.shape[1] - 1) ** args.length_penalty, tokens[b * k + j, 1:].tolist()))
        out.append(max(hyps, key=lambda h: h[0])[1] if hyps else [])
    return out


@torch.no_grad()
def generate(model, input_ids: torch.Tensor, attention_mask: torch.Tensor,
             source_extended_ids: torch.Tensor | None, args: GenerationArguments, use_cache: bool = True
             ) -> list[list[int]]:
    """Decode a batch of sources (batch, src_len) with ``model``; ids may be extended
    (map them back with the tokenizer's ``decode(ids, oovs)``)."""
    c = model.config
    beams = args.num_beams if not args.do_sample else 1
    stepper = ModelStepper(model, input_ids, attention_mask, source_extended_ids, expand=beams, use_cache=use_cache)
    if beams > 1:
        return beam_search(stepper, input_ids.shape[0], c.decoder_start_token_id, c.eos_token_id, args)
    return greedy_or_sample(stepper, input_ids.shape[0], c.decoder_start_token_id, c.eos_token_id, args)
