"""How good is a trained model? The held-out report `train` ends with and `evaluate` prints.

On the held-out pieces, the model's bits per note beside three yardsticks scored on the very
same targets (every token and each piece's <eos>), so the four figures compare directly:

- a uniform guess: log2(vocabulary size) bits per token;
- a unigram model: the training split's token frequencies (each piece's <eos> counted too), with
  add-one smoothing so no held-out token gets probability 0;
- the base model the checkpoint was fine-tuned from, when the caller passes one that reads the
  corpus's tokens.

Then the gap between the loss on a sample of training pieces and on the held-out ones (both in
eval mode with the state carried, the same scorer), a copy check of a few short sampled pieces
against the training split, the listening test (`listening`: a few sampled pieces against the
held-out ones), the warnings that weaken the figures, and one line of verdict
(`verdict.held_out_verdict`, which holds the thresholds).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lstm_music.corpus.store import Corpus
from lstm_music.errors import LstmMusicError, SettingError
from lstm_music.evaluation.likelihood import Totals, score_pieces, unigram_nll, without_controls
from lstm_music.evaluation.listening import (
    LISTEN_PIECES,
    ListeningTest,
    listening_from_dict,
    model_listening_test,
)
from lstm_music.evaluation.verdict import FEW_HELD_OUT, held_out_verdict, is_overfitting
from lstm_music.model.checkpoint import Checkpoint, base_of, check_corpus_fits, load_checkpoint

if TYPE_CHECKING:
    from lstm_music.corpus.store import CorpusPiece

HELD_OUT = ("valid", "test")
TRAIN_TOKENS_CAP = 200_000  # training tokens scored for the gap, at most (keeps it fast)
HELD_OUT_TOKENS_CAP = 200_000  # held-out tokens the report scores itself, at most
TRAIN_TOKENS_FLOOR = 20_000  # ... and at least this many where the training split has them
COPY_PIECES = 4  # pieces sampled for the copy check at the end of training
MAX_COPY_PIECES = 10_000  # each is sampled and searched for: a bound on the check's time
COPY_TOKENS = 200  # tokens each: enough for a few bars, seconds to sample and check
COPY_SEED = 0  # fixed: the same model gets the same check
MAX_LISTEN_PIECES = 64  # sampled for the listening test in one batch, at most


@dataclass(frozen=True)
class Predictor:
    """One predictor's figures on the held-out tokens."""

    name: str  # "model", "base", "unigram", "uniform"
    label: str  # for people: "this model", "unigram (train split)", ...
    nll_per_token: float  # nats
    bits_per_note: float | None  # None when the held-out pieces hold no notes

    @property
    def bits_per_token(self) -> float:
        return self.nll_per_token / math.log(2)


@dataclass(frozen=True)
class LossGap:
    """The model's loss on a sample of training pieces against its held-out loss."""

    train_nll: float  # nats per token, eval mode
    held_out_nll: float
    train_pieces: int  # sampled
    train_tokens: int  # scored
    overfitting: bool

    @property
    def gap(self) -> float:
        return self.held_out_nll - self.train_nll


@dataclass(frozen=True)
class CopyCheck:
    """A few short sampled pieces against the training split (`compare`'s copy detection)."""

    pieces: int
    tokens: int  # sampled per piece
    seed: int
    longest_run: int  # notes: the longest run of consecutive notes found in a training piece
    flagged: int  # pieces whose n-gram share reaches the threshold
    threshold: float
    ngram: int
    reference_pieces: int  # training pieces with notes
    seconds: float  # sampling, decoding and checking


@dataclass
class HeldOutReport:
    """Everything the report says; `to_dict()` is its JSON and `from_dict` reads it back."""

    split: str | None  # the held-out split scored; None: the corpus has none
    pieces: int
    tokens: int  # scored, each piece's <eos> included
    notes: int
    vocabulary: int
    predictors: list[Predictor] = field(default_factory=list)  # the model first
    gap: LossGap | None = None
    copies: CopyCheck | None = None
    warnings: list[str] = field(default_factory=list)  # what weakens the figures
    remarks: list[str] = field(default_factory=list)  # what was left out, and why
    fine_tuned: bool = False  # the "base" predictor is the model this one was fine-tuned from
    verdict: str = ""
    listening: ListeningTest | None = None  # sampled pieces against held-out ones (None: not run)

    def predictor(self, name: str) -> Predictor | None:
        return next((p for p in self.predictors if p.name == name), None)

    def saving(self, against: str = "unigram") -> float | None:
        """1 - model bits / `against`'s bits: the share of bits the model saves."""
        model, other = self.predictor("model"), self.predictor(against)
        if model is None or other is None or other.nll_per_token <= 0:
            return None
        return 1.0 - model.nll_per_token / other.nll_per_token

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["saving_vs_unigram"] = self.saving("unigram")
        data["saving_vs_base"] = self.saving("base")
        if self.listening is not None:
            data["listening"] = {**data["listening"], "ran": self.listening.ran,
                                 "summary": self.listening.summary()}  # fmt: skip
        if self.gap is not None:
            data["gap"]["gap"] = self.gap.gap
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HeldOutReport:
        data = dict(data)
        for derived in ("saving_vs_unigram", "saving_vs_base"):
            data.pop(derived, None)
        data["predictors"] = [Predictor(**p) for p in data.get("predictors", [])]
        if data.get("gap") is not None:
            data["gap"] = LossGap(**{k: v for k, v in data["gap"].items() if k != "gap"})
        if data.get("copies") is not None:
            data["copies"] = CopyCheck(**data["copies"])
        if data.get("listening") is not None:
            data["listening"] = listening_from_dict(data["listening"])
        return cls(**data)


def held_out_split(corpus: Corpus, split: str = "valid") -> tuple[str | None, list[str]]:
    """The split to report on: `split` if it has pieces, else the other held-out one; why."""
    if split not in HELD_OUT:
        raise SettingError(f"the report is on a held-out split (valid or test), not {split!r}",
                           "split")  # fmt: skip
    if corpus.split(split):
        return split, []
    other = HELD_OUT[1 - HELD_OUT.index(split)]
    if corpus.split(other):
        return other, [f"the {split} split has no pieces: the report is on the {other} split"]
    return None, ["the corpus has no held-out pieces (no valid or test split): nothing to judge "
                  "the model on"]  # fmt: skip


def training_sample(pieces: list[CorpusPiece], cap: int, seed: int = 0) -> list[np.ndarray]:
    """Training pieces in a fixed random order until `cap` tokens (the last one cut there)."""
    order = np.random.default_rng(seed).permutation(len(pieces))
    sample, total = [], 0
    for index in order:
        if total >= cap:
            break
        ids = pieces[int(index)].ids[: cap - total]
        sample.append(ids)
        total += len(ids)
    return sample


def held_out_sample(pieces: list[CorpusPiece], cap: int, seed: int = 0) -> list[CorpusPiece]:
    """Whole held-out pieces in a fixed random order while they fit in `cap` tokens (at least
    one): whole, so their note counts stay right for bits per note."""
    chosen, total = [], 0
    for index in np.random.default_rng(seed).permutation(len(pieces)):
        piece = pieces[int(index)]
        if chosen and total + len(piece.ids) + 1 > cap:
            continue
        chosen.append(piece)
        total += len(piece.ids) + 1
    return chosen


def _bits_per_note(totals: Totals, notes: int) -> float | None:
    return totals.nll / math.log(2) / notes if notes else None


def _model_totals(checkpoint: Checkpoint, ids: list[np.ndarray], split: str, scored, window: int):
    """The model's totals on the held-out pieces: `scored` (evaluate_split's answer) when it is
    for this split and the model alone, else scored here."""
    if (scored and scored.get("split") == split and scored.get("transpose_mixture") == "off"
            and scored.get("tokens") == sum(len(p) + 1 for p in ids)):  # fmt: skip
        return Totals(nll=scored["nll_per_token"] * scored["tokens"], tokens=scored["tokens"])
    return score_pieces(checkpoint.model, ids, window)


def _base_predictor(base: Checkpoint, corpus: Corpus, ids, notes: int, window: int, tuned: bool):
    """The base model on the held-out pieces, or why it cannot be compared; `tuned`: the
    checkpoint was fine-tuned from it (else it is the shipped base, for comparison)."""
    try:
        check_corpus_fits(base, corpus)
    except LstmMusicError as error:  # the corpus's path is the caller's to show, not ours
        return None, "base model not compared: " + str(error).replace(
            str(corpus.path), "the corpus"
        )
    totals = score_pieces(base.model, ids, window)
    name = base.path.stem if base.path is not None else "base"
    if base.path is not None and base.path.stem in ("best", "last"):
        name = base.path.parent.name
    label = f"base model ({name}, before fine-tuning)" if tuned else f"shipped model ({name})"
    return Predictor("base", label, totals.nll_per_token, _bits_per_note(totals, notes)), None


def loss_gap(
    checkpoint: Checkpoint, corpus: Corpus, held_out: Totals, window: int = 512,
    tokens_cap: int | None = None,
):  # fmt: skip
    """The model's loss on a fixed sample of training pieces (at most `tokens_cap` tokens)
    against `held_out`'s."""
    train = corpus.split("train")
    if not train:
        return None
    cap = min(TRAIN_TOKENS_CAP, max(TRAIN_TOKENS_FLOOR, held_out.tokens))
    cap = cap if tokens_cap is None else min(cap, tokens_cap)
    sample = training_sample(train, cap)
    totals = score_pieces(checkpoint.model, sample, window)
    over = is_overfitting(totals.nll_per_token, held_out.nll_per_token)
    return LossGap(totals.nll_per_token, held_out.nll_per_token, len(sample), totals.tokens, over)


def copy_check(
    checkpoint: Checkpoint, corpus: Corpus, pieces: int = COPY_PIECES, tokens: int = COPY_TOKENS,
    seed: int = COPY_SEED,
) -> CopyCheck | None:  # fmt: skip
    """Sample `pieces` short pieces (default sampling settings, fixed seed) and look for runs
    copied from the training split; None when the training split has no notes."""
    from lstm_music.evaluation.compare import DEFAULT_THRESHOLD, NGRAM, ReferenceIndex
    from lstm_music.evaluation.pieces import load_reference
    from lstm_music.evaluation.statistics import notes_of
    from lstm_music.generation.generate import generate
    from lstm_music.generation.sampling import SamplingOptions

    started = time.perf_counter()
    reference = load_reference(corpus, "train")
    if not reference:
        return None
    sampled = generate(checkpoint, SamplingOptions(tokens=tokens, num=pieces, seed=seed))
    index = ReferenceIndex([p.notes for p in reference])
    matches = [index.query(notes_of(piece.score), DEFAULT_THRESHOLD) for piece in sampled]
    return CopyCheck(
        pieces=len(sampled), tokens=tokens, seed=seed,
        longest_run=max((m.longest_run for m in matches), default=0),
        flagged=sum(m.copied for m in matches), threshold=DEFAULT_THRESHOLD, ngram=NGRAM,
        reference_pieces=len(reference), seconds=time.perf_counter() - started,
    )  # fmt: skip


def held_out_report(
    checkpoint: Checkpoint,
    corpus: Corpus,
    split: str = "valid",
    base: Checkpoint | None = None,
    copy_pieces: int = 0,
    window: int = 512,
    scored: dict[str, Any] | None = None,
    tokens_cap: int | None = None,
    listen_pieces: int = 0,
    listened: ListeningTest | None = None,
) -> HeldOutReport:
    """The report on `split` (valid or test; the other one when it is empty).

    base: the model to hold this one against (`model.checkpoint.base_of`: the one it was
    fine-tuned from, else the shipped base model when it reads the same tokens), or None;
    copy_pieces: short pieces sampled for the copy check (0: no check); scored: what
    `evaluate_split` answered for this split, reused rather than scoring the pieces again;
    tokens_cap: held-out (and training) tokens scored at most, for a report on a time budget
    (None: HELD_OUT_TOKENS_CAP); listen_pieces: pieces sampled for the listening test against
    the held-out pieces (0: no test); listened: that test already run on the valid split at
    the model's sampling (the sampling choice's own), reused rather than sampled again.
    """
    check_corpus_fits(checkpoint, corpus)
    if not 0 <= copy_pieces <= MAX_COPY_PIECES:
        raise SettingError(f"the copy check samples 0 to {MAX_COPY_PIECES:,} pieces", "copy_pieces")
    if not 0 <= listen_pieces <= MAX_LISTEN_PIECES:
        raise SettingError(f"the listening test samples 0 to {MAX_LISTEN_PIECES:,} pieces",
                           "listen_pieces")  # fmt: skip
    chosen, warnings = held_out_split(corpus, split)
    report = HeldOutReport(chosen, 0, 0, 0, len(corpus.vocabulary), warnings=warnings)
    if chosen is not None:
        _score(report, checkpoint, corpus, base, window, scored, tokens_cap)
    if copy_pieces:
        report.copies = copy_check(checkpoint, corpus, copy_pieces)
        if report.copies is None:
            report.remarks.append("copy check skipped: the train split has no pieces with notes")
    if listen_pieces and chosen is not None:
        reuse = listened is not None and chosen == "valid"
        report.listening = (
            listened
            if reuse
            else model_listening_test(checkpoint, corpus, chosen, pieces=listen_pieces)
        )
    report.verdict = _verdict(report)
    return report


def _score(report: HeldOutReport, checkpoint, corpus, base, window: int, scored, cap) -> None:
    """The held-out figures, the loss gap and their warnings, into `report`."""
    pieces = corpus.split(report.split)
    limit = HELD_OUT_TOKENS_CAP if cap is None else cap
    if scored is None and sum(len(p.ids) + 1 for p in pieces) > limit:
        every = len(pieces)
        pieces = held_out_sample(pieces, limit)
        report.remarks.append(
            f"scored {len(pieces):,} of the {every:,} {report.split} pieces (a fixed sample of "
            f"about {limit:,} tokens, to keep the report quick; `evaluate` scores them all)"
        )
    ids = without_controls(corpus.vocabulary, [p.ids for p in pieces])
    notes = sum(p.info.notes for p in pieces)
    model = _model_totals(checkpoint, ids, report.split, scored, window)
    report.pieces, report.tokens, report.notes = len(pieces), model.tokens, notes
    vocabulary = len(corpus.vocabulary)
    train = without_controls(corpus.vocabulary, [p.ids for p in corpus.split("train")])
    unigram = unigram_nll(train, ids, vocabulary)
    uniform = Totals(nll=model.tokens * math.log(vocabulary), tokens=model.tokens)
    report.predictors = [
        Predictor("model", "this model", model.nll_per_token, _bits_per_note(model, notes)),
        Predictor("unigram", "unigram (train split)", unigram.nll_per_token,
                  _bits_per_note(unigram, notes)),
        Predictor("uniform", "uniform guess", uniform.nll_per_token,
                  _bits_per_note(uniform, notes)),
    ]  # fmt: skip
    if base is not None:
        tuned = checkpoint.fine_tuned_from is not None
        predictor, remark = _base_predictor(base, corpus, ids, notes, window, tuned)
        report.fine_tuned = tuned and predictor is not None
        if predictor is not None:
            report.predictors.insert(1, predictor)
        else:
            report.remarks.append(remark)
    if len(pieces) < FEW_HELD_OUT:
        report.warnings.append(
            f"only {len(pieces)} held-out piece{'s' * (len(pieces) != 1)} (fewer than "
            f"{FEW_HELD_OUT}): the figures rest on little music and mean little"
        )
    report.gap = loss_gap(checkpoint, corpus, model, window, cap)
    if report.gap is not None and report.gap.overfitting:
        report.warnings.append(
            f"overfitting: held-out loss {report.gap.held_out_nll:.3f} nats per token against "
            f"{report.gap.train_nll:.3f} on training pieces; the model fits its training pieces "
            "better than new ones"
        )


def _verdict(report: HeldOutReport) -> str:
    gap, copies = report.gap, report.copies
    return held_out_verdict(
        report.saving("unigram") if report.split else None,
        report.saving("base"),
        gap.gap if gap else None,
        bool(gap and gap.overfitting),
        copies.flagged if copies else None,
        copies.pieces if copies else 0,
        copies.longest_run if copies else 0,
        report.pieces,
        report.fine_tuned,
        report.listening,
    )


def run_report(
    run_dir: str | Path, corpus: Corpus, copy_pieces: int = COPY_PIECES, device: str = "cpu",
    tokens_cap: int | None = None, listen_pieces: int | None = None,
    listened: ListeningTest | None = None,
) -> HeldOutReport:  # fmt: skip
    """The report `train` ends with: the run's best checkpoint on the corpus's valid split,
    against its base model, with a copy check and a listening test; kept in the run folder as
    report.json. `tokens_cap` bounds the tokens scored (training/closing.py fits it to a time
    budget); listen_pieces None: LISTEN_PIECES when the budget left room for the copy check's
    sampling (`copy_pieces` > 0), else none; listened: see `held_out_report`."""
    from lstm_music.fsutil import write_bytes_atomically
    from lstm_music.model.runs import REPORT_FILE

    checkpoint = load_checkpoint(run_dir, device)
    listen = LISTEN_PIECES * (copy_pieces > 0) if listen_pieces is None else listen_pieces
    report = held_out_report(
        checkpoint, corpus, base=base_of(checkpoint), copy_pieces=copy_pieces,
        tokens_cap=tokens_cap, listen_pieces=listen, listened=listened,
    )  # fmt: skip
    text = json.dumps(report.to_dict(), indent=1)
    write_bytes_atomically(Path(run_dir) / REPORT_FILE, text.encode())
    return report
