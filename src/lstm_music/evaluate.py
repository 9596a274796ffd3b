"""Held-out likelihood: every token of every piece, scored with the model's carried state.

Pieces are framed as <bos> tokens <eos> and run through the model whole (in windows, with the
state carried across them), so each token is predicted from everything before it in its piece,
exactly as generation sees it: no independent windows, no lost context at window edges.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from lstm_music.corpus import BOS_ID, EOS_ID, PAD_ID
from lstm_music.model import LSTMModel


@dataclass
class Totals:
    """Sums over scored tokens; divide by `tokens` for means."""

    nll: float = 0.0  # nats
    tokens: int = 0
    top1: int = 0
    top5: int = 0

    def add(self, other: Totals) -> None:
        self.nll += other.nll
        self.tokens += other.tokens
        self.top1 += other.top1
        self.top5 += other.top5

    @property
    def nll_per_token(self) -> float:
        return self.nll / max(self.tokens, 1)

    @property
    def perplexity(self) -> float:
        return math.exp(min(self.nll_per_token, 700.0))

    @property
    def accuracy(self) -> float:
        return self.top1 / max(self.tokens, 1)

    @property
    def top5_accuracy(self) -> float:
        return self.top5 / max(self.tokens, 1)

    def as_list(self) -> list[float]:
        return [self.nll, float(self.tokens), float(self.top1), float(self.top5)]


def _framed_batch(pieces: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Inputs <bos>+ids and targets ids+<eos>, padded: both (pieces, longest + 1)."""
    longest = max(len(p) for p in pieces) + 1
    inputs = np.full((len(pieces), longest), PAD_ID, dtype=np.int64)
    targets = np.full((len(pieces), longest), -100, dtype=np.int64)
    for row, ids in enumerate(pieces):
        inputs[row, 0], inputs[row, 1 : len(ids) + 1] = BOS_ID, ids
        targets[row, : len(ids)], targets[row, len(ids)] = ids, EOS_ID
    return inputs, targets


@torch.no_grad()
def score_pieces(
    model: LSTMModel,
    pieces: list[np.ndarray],
    window: int = 512,
    batch_size: int = 16,
    token_nll: list[np.ndarray] | None = None,
) -> Totals:
    """NLL and top-1/top-5 hits over all tokens (incl. each piece's <eos>) of `pieces`.

    If `token_nll` is a list, the per-token NLL of each piece (length len(piece) + 1, the last
    entry for <eos>) is appended to it, in the order of `pieces`.
    """
    was_training = model.training
    model.eval()
    device = model.head.weight.device
    totals = Totals()
    order = sorted(range(len(pieces)), key=lambda i: len(pieces[i]))  # similar lengths together
    per_piece: dict[int, np.ndarray] = {}
    for first in range(0, len(order), batch_size):
        group = order[first : first + batch_size]
        inputs, targets = _framed_batch([np.asarray(pieces[i]) for i in group])
        state = None
        losses = []
        for start in range(0, inputs.shape[1], window):
            x = torch.from_numpy(inputs[:, start : start + window]).to(device)
            y = torch.from_numpy(targets[:, start : start + window]).to(device)
            logits, state = model(x, state)  # (B, T, V)
            logits = logits.float()
            nll = F.cross_entropy(logits.transpose(1, 2), y, ignore_index=-100, reduction="none")
            scored = y != -100
            top5 = logits.topk(min(5, logits.shape[-1]), dim=-1).indices  # (B, T, 5)
            totals.add(
                Totals(
                    nll=float(nll[scored].sum()),
                    tokens=int(scored.sum()),
                    top1=int(((top5[..., 0] == y) & scored).sum()),
                    top5=int(((top5 == y.unsqueeze(-1)).any(-1) & scored).sum()),
                )
            )
            losses.append(nll.cpu().numpy())
        if token_nll is not None:
            all_nll = np.concatenate(losses, axis=1)  # (B, longest + 1)
            for row, i in enumerate(group):
                per_piece[i] = all_nll[row, : len(pieces[i]) + 1]
    if token_nll is not None:
        token_nll.extend(per_piece[i] for i in range(len(pieces)))
    model.train(was_training)
    return totals


def step_nll(tokens: list[str], nll: np.ndarray, step_token: str = "Step") -> np.ndarray:
    """Per time step of a grid piece, the summed NLL of its tokens (pitches, then `Step`).

    `nll` has one entry per token plus a final one for <eos>, which belongs to no step.
    """
    ends = [i for i, token in enumerate(tokens) if token == step_token]  # each step ends here
    sums = np.cumsum(nll[: len(tokens)], dtype=np.float64)
    totals = sums[ends]
    return np.diff(totals, prepend=0.0)


def evaluate_split(
    checkpoint, corpus, split: str = "valid", score_first_step: bool = False, window: int = 512
) -> dict:
    """Every token of every piece of `split`, with carried state: the figures `evaluate` prints."""
    from lstm_music.errors import LstmMusicError

    if corpus.tokenizer_config != checkpoint.tokenizer_config:
        raise LstmMusicError(
            f"the corpus uses {corpus.tokenizer_config.get('tokenizer')!r} tokens with other "
            f"settings than the checkpoint ({checkpoint.tokenizer_config.get('tokenizer')!r})"
        )
    if corpus.vocabulary != checkpoint.vocabulary:
        raise LstmMusicError("the corpus and the checkpoint number their tokens differently")
    pieces = corpus.split(split)
    if not pieces:
        raise LstmMusicError(f"{corpus.path} has no {split!r} pieces")
    per_token: list[np.ndarray] = []
    totals = score_pieces(checkpoint.model, [p.ids for p in pieces], window, token_nll=per_token)
    notes = sum(p.info.notes for p in pieces)
    report = {
        "split": split, "pieces": len(pieces), "tokens": totals.tokens,
        "nll_per_token": totals.nll_per_token, "perplexity": totals.perplexity,
        "accuracy": totals.accuracy, "top5_accuracy": totals.top5_accuracy,
        "bits_per_note": totals.nll / math.log(2) / notes if notes else None, "notes": notes,
    }  # fmt: skip
    if corpus.tokenizer_config.get("tokenizer") == "grid":
        steps = [step_nll(p.tokens, nll) for p, nll in zip(pieces, per_token)]
        scored = np.concatenate([s if score_first_step else s[1:] for s in steps])
        report.update(
            nll_per_step=float(scored.mean()) if len(scored) else None,
            predicted_steps=int(len(scored)),
            first_step_scored=score_first_step,
        )
    return report
