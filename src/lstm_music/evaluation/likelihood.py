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

from lstm_music.corpus.store import BOS_ID, EOS_ID, PAD_ID, Corpus
from lstm_music.errors import LstmMusicError, SettingError
from lstm_music.model.checkpoint import Checkpoint, check_corpus_fits
from lstm_music.model.lstm import LSTMModel
from lstm_music.settings import shown


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
    tables: dict[int, np.ndarray] | None = None,
) -> Totals:
    """NLL and top-1/top-5 hits over all tokens (incl. each piece's <eos>) of `pieces`.

    If `token_nll` is a list, the per-token NLL of each piece (length len(piece) + 1, the last
    entry for <eos>) is appended to it, in the order of `pieces`. With `tables` (shift -> id map,
    as `data.transpose_tables` builds), the model scored is the transposition mixture: see
    `_mixture_windows`.
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
        losses = []
        if tables:
            windows = _mixture_windows(model, inputs, targets, tables, window, device)
        else:
            windows = _plain_windows(model, inputs, targets, window, device)
        for log_probs, y in windows:
            nll, counts = _window_totals(log_probs, y)
            totals.add(counts)
            losses.append(nll.cpu().numpy())
        if token_nll is not None:
            all_nll = np.concatenate(losses, axis=1)  # (B, longest + 1)
            for row, i in enumerate(group):
                per_piece[i] = all_nll[row, : len(pieces[i]) + 1]
    if token_nll is not None:
        token_nll.extend(per_piece[i] for i in range(len(pieces)))
    model.train(was_training)
    return totals


def _window_totals(log_probs: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, Totals]:
    """Per-token NLL (B, T) and the totals of one window; log_probs (B, T, V), y (B, T)."""
    nll = F.nll_loss(log_probs.transpose(1, 2), y, ignore_index=-100, reduction="none")
    scored = y != -100
    top5 = log_probs.topk(min(5, log_probs.shape[-1]), dim=-1).indices  # (B, T, 5)
    return nll, Totals(
        nll=float(nll[scored].sum()),
        tokens=int(scored.sum()),
        top1=int(((top5[..., 0] == y) & scored).sum()),
        top5=int(((top5 == y.unsqueeze(-1)).any(-1) & scored).sum()),
    )


def _plain_windows(model, inputs: np.ndarray, targets: np.ndarray, window: int, device):
    """Yield (log-probs (B, T, V), targets (B, T)) window by window, state carried."""
    state = None
    for start in range(0, inputs.shape[1], window):
        x = torch.from_numpy(inputs[:, start : start + window]).to(device)
        y = torch.from_numpy(targets[:, start : start + window]).to(device)
        logits, state = model(x, state)  # (B, T, V)
        yield torch.log_softmax(logits.float(), dim=-1), y


def _mixture_windows(model, inputs, targets, tables: dict[int, np.ndarray], window: int, device):
    """Like `_plain_windows`, for the mixture of the model over transpositions of the piece.

    p(piece) = mean over shifts k of p_model(piece moved by k): a proper distribution (moving is
    one-to-one; a shift that pushes a token out of the vocabulary counts as probability 0). Token
    by token this is a Bayesian mixture: shift k predicts the next token with weight proportional
    to the probability it gave the piece so far. A model trained with transposition augmentation
    has learned every key; the mixture pools what it predicts in each of them.
    """
    shifts = [0, *sorted(k for k in tables if k != 0)]
    size = len(next(iter(tables.values())))
    lookups = [np.arange(size) if k == 0 else tables[k] for k in shifts]
    back = torch.from_numpy(np.stack(lookups)).to(device)  # (K, V): original id -> moved id
    moved = [lookup[inputs] for lookup in lookups]  # -1 where a token leaves the vocabulary
    # fixed prior 1/K: a shift that moves a token of the piece out of the vocabulary gives that
    # token probability 0 when it comes, and the shift weighs nothing from then on
    prefix = torch.full((len(shifts), inputs.shape[0]), -math.log(len(shifts)), device=device)
    prefix = prefix.double()
    states = [None] * len(shifts)
    for start in range(0, inputs.shape[1], window):
        y = torch.from_numpy(targets[:, start : start + window]).to(device)
        per_shift = []
        for k, ids in enumerate(moved):
            x = torch.from_numpy(np.maximum(ids[:, start : start + window], 0)).to(device)
            logits, states[k] = model(x, states[k])
            log_probs = torch.log_softmax(logits.float(), dim=-1)  # (B, T, V) moved ids
            gather = back[k].clamp(min=0).expand(*log_probs.shape[:2], -1)
            log_probs = log_probs.gather(-1, gather).masked_fill(back[k] < 0, -math.inf)
            per_shift.append(log_probs)  # (B, T, V) original ids
        stacked = torch.stack(per_shift)  # (K, B, T, V)
        picked = y.clamp(min=0).expand(len(shifts), -1, -1).unsqueeze(-1)  # (K, B, T, 1)
        target_lp = stacked.gather(-1, picked).squeeze(-1).double()  # (K, B, T)
        target_lp = target_lp.masked_fill(y == -100, 0.0)
        before = torch.cumsum(target_lp, dim=-1).roll(1, dims=-1)  # log p of the window so far
        before[..., 0] = 0.0
        weights = prefix.unsqueeze(-1) + before  # (K, B, T) unnormalised log weights
        weights = (weights - torch.logsumexp(weights, dim=0, keepdim=True)).float()
        yield torch.logsumexp(weights.unsqueeze(-1) + stacked, dim=0), y
        prefix = prefix + target_lp.sum(-1)


def step_nll(tokens: list[str], nll: np.ndarray, step_token: str = "Step") -> np.ndarray:
    """Per time step of a grid piece, the summed NLL of its tokens (pitches, then `Step`).

    `nll` has one entry per token plus a final one for <eos>, which belongs to no step.
    """
    ends = [i for i, token in enumerate(tokens) if token == step_token]  # each step ends here
    sums = np.cumsum(nll[: len(tokens)], dtype=np.float64)
    totals = sums[ends]
    return np.diff(totals, prepend=0.0)


def without_controls(vocabulary: list[str], pieces: list[np.ndarray]) -> list[np.ndarray]:
    """The pieces with their attribute-control tokens taken out: held-out music scored as
    generation without controls meets it (a model trained with controls sees bars without
    them too). Pieces of a vocabulary without controls come back as they are."""
    from lstm_music.tokens.controls import control_mask

    control = control_mask(vocabulary)
    if not control.any():
        return pieces
    return [np.asarray(ids)[~control[np.asarray(ids)]] for ids in pieces]


def evaluate_split(
    checkpoint: Checkpoint,
    corpus: Corpus,
    split: str = "valid",
    score_first_step: bool = False,
    window: int = 512,
    transpose_mixture: str = "off",
) -> dict:
    """Every token of every piece of `split`, with carried state: the figures `evaluate` prints.

    `transpose_mixture` ("-5..6"; "off" by default) scores the mixture of the model over those
    transpositions of each piece instead of the model alone (see `_mixture_windows`).
    """
    from lstm_music.tokens.transpose import transpose_tables
    from lstm_music.training.settings import parse_transpose

    check_corpus_fits(checkpoint, corpus)
    pieces = corpus.split(split)
    if not pieces:
        raise LstmMusicError(f"{corpus.path} has no {split!r} pieces")
    try:
        low, high = parse_transpose(transpose_mixture)
    except LstmMusicError as error:
        raise SettingError(f"the transposition mixture is off or a range like -5..6 that holds 0 "
                           f"within -12..12, not {shown(transpose_mixture)}",
                           "transpose_mixture") from error  # fmt: skip
    tokenizer = checkpoint.tokenizer()
    tables = transpose_tables(corpus.vocabulary, tokenizer, low, high) if high > low else None
    per_token: list[np.ndarray] = []
    ids = without_controls(corpus.vocabulary, [p.ids for p in pieces])
    totals = score_pieces(checkpoint.model, ids, window, token_nll=per_token, tables=tables)
    notes = sum(p.info.notes for p in pieces)
    report = {
        "split": split, "pieces": len(pieces), "tokens": totals.tokens,
        "nll_per_token": totals.nll_per_token, "perplexity": totals.perplexity,
        "accuracy": totals.accuracy, "top5_accuracy": totals.top5_accuracy,
        "bits_per_note": totals.nll / math.log(2) / notes if notes else None, "notes": notes,
        "transpose_mixture": f"{low}..{high}" if tables else "off",
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


def unigram_nll(train: list[np.ndarray], held_out: list[np.ndarray], vocabulary: int) -> Totals:
    """NLL (nats) of the held-out targets (ids, then <eos>) under the training split's token
    frequencies, each piece's <eos> counted, with add-one smoothing over the vocabulary."""

    def counted(pieces: list[np.ndarray]) -> np.ndarray:
        ids = np.concatenate([np.asarray(p, dtype=np.int64) for p in pieces] or [np.zeros(0, int)])
        found = np.bincount(ids, minlength=vocabulary)[:vocabulary].astype(np.float64)
        found[EOS_ID] += len(pieces)  # each piece ends with one
        return found

    counts = counted(train) + 1.0  # add-one
    log_p = np.log(counts) - math.log(counts.sum())
    targets = counted(held_out)
    return Totals(nll=float(-(targets * log_p).sum()), tokens=int(targets.sum()))
