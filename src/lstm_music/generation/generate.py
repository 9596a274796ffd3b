"""`generate`: a checkpoint (and optionally a primer) -> new token sequences -> scores.

Generation runs the primer through the model once, then one `FastStepper` step per new token
for the whole batch of `num` pieces at a time. Special tokens are never sampled, nor what the
hard constraints forbid (key, pitch range, instruments: `masks`); a model trained with controls
gets the asked ones (density, polyphony, key) as forced input after each bar header
(`controls`: forced tokens are part of the piece's tokens and count in its length); length can be
given in tokens, or for timed tokenizers in seconds or bars: then tokens come in chunks until
every piece has music past the asked length, and the piece is cut exactly there. Whatever the
primer or the model writes, no piece is longer than `max_seconds` (primer included), and a
primer takes at most half of the piece: a hostile file cannot make hour-long output. What
falls short or gets cut is said in the piece's `warnings`. The loop is `Generation`'s, so a
caller can watch a piece being written (generation/stream.py) and get the same piece.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import symusic
import torch

from lstm_music.corpus.store import BOS_ID, PAD_ID, SPECIAL_TOKENS
from lstm_music.errors import LstmMusicError, SettingError
from lstm_music.generation.controls import ControlPlan, control_plan
from lstm_music.generation.masks import TokenMask, token_mask
from lstm_music.generation.sampling import GenerateOptions, SamplingOptions, with_model_defaults
from lstm_music.generation.stepper import FastStepper, blas_controller, one_blas_thread, pick_tokens
from lstm_music.model.checkpoint import Checkpoint, load_checkpoint
from lstm_music.tokens import keeps_instruments, understood_controls
from lstm_music.tokens.controls import control_mask, is_control
from lstm_music.tokens.instruments import fit_channels
from lstm_music.tokens.midi import cut_score, duration_seconds, note_count
from lstm_music.tokens.timing import seconds_at, ticks_at

PROGRESS_STEPS = 256  # tokens between two reports of progress, when a caller listens
CHUNK = 256  # tokens generated before the first length check when the length is in seconds/bars
__all__ = ["GenerateOptions", "GeneratedPiece", "SamplingOptions", "generate"]


@dataclass
class GeneratedPiece:
    tokens: list[str]  # primer tokens followed by the new ones
    score: symusic.Score
    primer_length: int = 0
    seconds: float = 0.0  # length of the score as written
    shortfall: float = 0.0  # how much shorter than the asked seconds or bars (that unit)
    token_cap_reached: bool = False  # the shortfall is the new-token cap's (max_tokens) doing
    warnings: list[str] = field(default_factory=list)  # one line each, for the user


@dataclass
class _Plan:
    """What decoding a row of tokens needs."""

    tokenizer: Any
    vocabulary: list[str]
    primer_ids: list[int]
    options: SamplingOptions
    primer_end: int = 0  # tick where the primer's music ends (0: no primer in the output)


def _banned(vocabulary: list[str]) -> torch.Tensor:
    """Mask (V,) of ids never to sample: the special tokens."""
    mask = torch.zeros(len(vocabulary), dtype=torch.bool)
    mask[: len(SPECIAL_TOKENS)] = True
    return mask


class _Session:
    """The batch's recurrent state and next-token logits, advanced one step per token."""

    def __init__(
        self,
        checkpoint: Checkpoint,
        primer_ids: list[int],
        options,
        rng,
        mask: TokenMask | None,
        controls: ControlPlan | None = None,
    ):
        model = checkpoint.model
        self.device = model.head.weight.device
        self.stepper = FastStepper(model)
        self.state = self.stepper.convert_state(model.init_state(options.num))
        # <bos> + primer, one step per token too: cheaper than a first nn.LSTM call (whose
        # CPU kernels are set up per input shape) for primers of usual length
        for token in [BOS_ID, *primer_ids]:
            logits, self.state = self.stepper.step(
                self._tokens(np.full(options.num, token)), self.state
            )
        self.logits = self._numpy(logits)  # (num, V)
        self.banned = _banned(checkpoint.vocabulary).numpy()
        if controls is not None:  # control tokens are forced, never sampled
            self.banned = self.banned | controls.banned
        self.options, self.rng, self.mask, self.controls = options, rng, mask, controls
        self.unsteered = None  # the state without the controls, when guidance asks for one
        if controls is not None and controls.steers and options.guidance > 1:
            self.unsteered = self._unsteered(checkpoint, primer_ids, options.num)

    def _unsteered(self, checkpoint: Checkpoint, primer_ids: list[int], num: int):
        """Guidance's second state: <bos> and the primer without its control tokens."""
        from lstm_music.generation.guidance import Unsteered

        control_ids = control_mask(checkpoint.vocabulary)
        plain = [i for i in primer_ids if not control_ids[i]]
        if len(plain) == len(primer_ids):  # the same tokens so far: the same state
            return Unsteered(self.stepper, self.state, self.logits, control_ids)
        state = self.stepper.convert_state(checkpoint.model.init_state(num))
        for token in [BOS_ID, *plain]:
            logits, state = self.stepper.step(self._tokens(np.full(num, token)), state)
        return Unsteered(self.stepper, state, self._numpy(logits), control_ids)

    def _tokens(self, ids: np.ndarray):
        return ids if self.stepper.use_numpy else torch.from_numpy(ids).to(self.device)

    def _numpy(self, logits) -> np.ndarray:
        return logits if self.stepper.use_numpy else logits.float().cpu().numpy()

    def advance(self, steps: int) -> np.ndarray:
        """The next `steps` ids of every piece, (num, steps)."""
        options, stepper = self.options, self.stepper
        out = np.empty((options.num, steps), dtype=np.int64)
        logits, state = self.logits, self.state
        for t in range(steps):
            if self.unsteered is not None:  # the controls pushed harder (generation.guidance)
                logits = self.unsteered.guide(logits, options.guidance)
            logits = np.where(self.banned, -np.inf, logits)
            if self.mask is not None:  # the hard constraints (key, range, instruments)
                logits = self.mask.apply(logits)
            out[:, t] = pick_tokens(logits, options, self.rng)
            if self.controls is not None:  # after a bar header, the bar's controls as input
                out[:, t] = self.controls.force(out[:, t])
            if self.mask is not None:  # a program token changes what the next notes are
                self.mask.observe(out[:, t])
            if self.unsteered is not None:
                self.unsteered.observe(out[:, t], self._tokens)
            logits, state = stepper.step(self._tokens(out[:, t]), state)
            logits = self._numpy(logits)
        self.logits, self.state = logits, state
        return out


def _decode(tokenizer, tokens: list[str], options: SamplingOptions):
    """Tokens -> (score, warnings); a sequence the tokenizer cannot read becomes an empty score."""
    warnings = []
    try:
        score = tokenizer.decode(tokens)
    except LstmMusicError as error:
        warnings.append(f"could not decode a generated sequence ({error}); wrote it empty")
        score = symusic.Score(480)
    if options.tempo is not None:
        score.tempos = [symusic.Tempo(0, float(options.tempo))]
    if options.program is not None:
        for track in score.tracks:
            if not track.is_drum:  # drums stay on their channel, with their kit
                track.program = options.program
    if keeps_instruments(tokenizer):  # a track per instrument: each needs a channel of its own
        folded = fit_channels(score)
        if folded:
            warnings.append(f"more instruments than MIDI has channels for: {', '.join(folded)} "
                            "played by kept instruments of their family")  # fmt: skip
    return score, warnings


def _bar_ticks(score: symusic.Score) -> int:
    signature = score.time_signatures[0] if len(score.time_signatures) else None
    numerator, denominator = (signature.numerator, signature.denominator) if signature else (4, 4)
    return max(1, int(score.tpq * 4 * numerator / denominator))


def _asked_tick(score: symusic.Score, options: SamplingOptions) -> int | None:
    """The asked length (seconds or bars) in the score's ticks; None for a length in tokens."""
    if options.seconds is not None:
        return ticks_at(score, options.seconds)
    if options.bars is not None:
        return int(options.bars * _bar_ticks(score))
    return None


def _limit_tick(score: symusic.Score, options: SamplingOptions) -> int:
    """Where the piece ends at the latest: the asked length, within the cap."""
    cap = ticks_at(score, options.cap_seconds)
    asked = _asked_tick(score, options)
    return cap if asked is None else min(asked, cap)


def _last_onset(score: symusic.Score) -> int:
    """Tick of the latest note start, -1 without notes: the music is complete up to there."""
    starts = [int(track.notes.numpy()["time"].max()) for track in score.tracks if len(track.notes)]
    return max(starts, default=-1)


def _progress(score: symusic.Score, options: SamplingOptions) -> float:
    """How far the piece has come, 1 = done: a note starts at or past the limit."""
    return max(0, _last_onset(score)) / max(1, _limit_tick(score, options))


def _next_steps(done: int, progress: float, budget: int) -> int:
    """Tokens to generate next: the slowest piece's pace so far, projected, with a margin."""
    if done == 0:
        steps = CHUNK
    elif progress <= 0:
        steps = done
    else:
        steps = min(done, math.ceil(done * (1.15 / progress - 1)) + 64)
    return max(1, min(steps, budget - done))


def generate(
    checkpoint: Checkpoint | str | Path,
    options: SamplingOptions | None = None,
    on_progress: Callable[[float], None] | None = None,
    **settings,
) -> list[GeneratedPiece]:
    """Write `options.num` new pieces; each has its tokens (primer first) and a symusic Score.

    `on_progress` hears how far the batch has come (0 to 1) every `PROGRESS_STEPS` tokens: a
    long piece takes minutes, and the library prints nothing itself.
    `generate("runs/bach/best.safetensors", tokens=400, temperature=0.9, seed=1)`
    """
    generation = start_generation(checkpoint, options or SamplingOptions(**settings))
    while not generation.done:
        generation.advance(generation.next_steps(), on_progress)
        generation.measure()
    if on_progress is not None:
        on_progress(1.0)
    return generation.finish()


@dataclass
class Generation:
    """A batch being written, one chunk of tokens at a time: `generate`'s loop, in steps a
    caller can watch (generation/stream.py decodes the piece between the steps of a chunk).

    The chunks are generate's whatever the caller does between them, so a seed gives the
    same tokens either way."""

    plan: _Plan
    session: _Session
    mask: TokenMask | None
    budget: int  # new tokens at most
    new: np.ndarray  # (num, tokens so far)
    progress: float = 0.0  # of the slowest piece, 1 = done (see `_progress`)
    pieces: list[GeneratedPiece] = field(default_factory=list)  # as of the last measure
    blas: Any = None  # threadpoolctl's controller of the BLAS libraries, on the CPU

    @property
    def done(self) -> bool:
        ended = _ended(self.mask, len(self.new))  # every piece ended: the mask left them nothing
        return self.new.shape[1] >= self.budget or self.progress >= 1 or bool(ended.all())

    def next_steps(self) -> int:
        """The length of the next chunk: all the tokens at once for a length in tokens."""
        if not self.plan.options.timed:
            return self.budget
        return _next_steps(self.new.shape[1], self.progress, self.budget)

    def advance(self, steps: int, on_progress: Callable[[float], None] | None = None) -> None:
        """`steps` more tokens of every piece; `on_progress` hears the fraction done between
        parts of the chunk (the same tokens either way: the session keeps its state)."""
        measured = self.new.shape[1]  # tokens when `progress` was measured
        while steps > 0:
            part = steps if on_progress is None else min(steps, PROGRESS_STEPS)
            with one_blas_thread(self.blas):
                self.new = np.concatenate([self.new, self.session.advance(part)], 1)
            steps -= part
            if on_progress is not None:
                on_progress(self._fraction(measured))

    def _fraction(self, measured: int) -> float:
        """How far the batch has come: tokens of the budget, or for a length in seconds or bars
        the progress measured, projected at the pace so far (below 1 until measured done)."""
        done = self.new.shape[1]
        if self.plan.options.timed and self.progress > 0 and measured > 0:
            return min(0.99, self.progress * done / measured)
        return min(0.99, done / max(1, self.budget))

    def decode(
        self, row: int = 0, length: int | None = None, then: Sequence[int] = ()
    ) -> GeneratedPiece:
        """Piece `row` as its first `length` new tokens (all by default) make it, followed by
        the ids `then` (a probe of the decoder, never sampled), uncut."""
        ids = self.new[row, :length]
        return _piece(self.plan, np.concatenate([ids, np.asarray(then, dtype=ids.dtype)]))

    def measure(self, pieces: list[GeneratedPiece] | None = None) -> None:
        """After a chunk: every piece as written (`pieces` when the caller just decoded them)
        and how far the slowest has come."""
        options = self.plan.options
        self.pieces = pieces or [_piece(self.plan, row) for row in self.new]
        ended, pieces = _ended(self.mask, len(self.new)), self.pieces
        progress = [1.0 if ended[i] else _progress(p.score, options) for i, p in enumerate(pieces)]
        self.progress = min(progress) if options.timed else 1.0

    def limit_tick(self, score: symusic.Score) -> int:
        """Where the piece ends at the latest, in `score`'s ticks (see `_limit_tick`)."""
        return _limit_tick(score, self.plan.options)

    def finish(self) -> list[GeneratedPiece]:
        """The pieces cut at the asked length and the cap, with their warnings."""
        pieces = [_finish(piece, self.plan.options, self.budget) for piece in self.pieces]
        for row, piece in enumerate(pieces if self.mask is not None else []):
            piece.warnings += self.mask.warnings(row)
        return pieces


def start_generation(checkpoint: Checkpoint | str | Path, options: SamplingOptions) -> Generation:
    """Check the options against the model (refusals before any work), run the primer through
    it: a `Generation` ready for its first chunk."""
    if not isinstance(checkpoint, Checkpoint):
        checkpoint = load_checkpoint(checkpoint)
    options = with_model_defaults(options, checkpoint.sampling)  # unset: the model's choice
    tokenizer = checkpoint.tokenizer()
    if options.timed and not tokenizer.timed:
        raise SettingError(f"a length in seconds or bars needs a timed tokenizer; this model "
                           f"uses {tokenizer.name!r}, which has no timing: give it in tokens",
                           "seconds" if options.seconds is not None else "bars")  # fmt: skip
    config = checkpoint.tokenizer_config
    controls = control_plan(checkpoint.vocabulary, config, options)  # refusals before work
    mask = token_mask(checkpoint.vocabulary, tokenizer.name, options, understood_controls(config))
    index = {token: i for i, token in enumerate(checkpoint.vocabulary)}
    # a primer's own control tokens (a file's, read with dropout; a corpus window's) go: the
    # asked ones are forced, and guidance's unsteered state must read none
    primer_ids = [index[t] for t in options.primer if t in index and not is_control(t)]
    opened = bool(controls is not None and controls.start_ids and primer_ids)
    if opened:  # the piece's controls (the instruments) open it, before the primer, as in
        primer_ids = [*controls.start_ids, *primer_ids]  # training (and not again after it)
    plan = _Plan(tokenizer, checkpoint.vocabulary, primer_ids, options)
    if options.include_primer and primer_ids:
        primer = [checkpoint.vocabulary[i] for i in primer_ids]
        plan.primer_end = _decode(tokenizer, primer, options)[0].end()
    rng = np.random.default_rng(options.seed)
    if controls is not None:
        controls.start(options.num, primer_ids[-1] if primer_ids else None, opened)
    blas = blas_controller(checkpoint.model)
    with one_blas_thread(blas):  # the primer's steps too
        session = _Session(checkpoint, primer_ids, options, rng, mask, controls)
    new = np.zeros((options.num, 0), dtype=np.int64)
    return Generation(plan, session, mask, options.token_budget(), new, blas=blas)


def _ended(mask: TokenMask | None, rows: int) -> np.ndarray:
    """(rows,) True for the pieces that ended because their mask left nothing to write."""
    return np.zeros(rows, bool) if mask is None or mask.ended is None else mask.ended >= 0


def _piece(plan: _Plan, row: np.ndarray) -> GeneratedPiece:
    """A row of new ids as a piece; a primer too long for the piece keeps only its end."""
    options = plan.options
    ids = row.tolist()
    if PAD_ID in ids:  # the piece ended there: its mask left nothing to write (masks.py)
        ids = ids[: ids.index(PAD_ID)]
    new = [plan.vocabulary[i] for i in ids]
    tokens = [plan.vocabulary[i] for i in plan.primer_ids] + new
    score, warnings = _decode(plan.tokenizer, tokens if options.include_primer else new, options)
    keep = _limit_tick(score, options) // 2
    if plan.primer_end > keep:
        bar = _bar_ticks(score)
        start = -(-(plan.primer_end - keep) // bar) * bar  # on a bar line
        lasts = seconds_at(score, plan.primer_end)
        kept = lasts - seconds_at(score, start)
        warnings.append(f"the primer lasts {lasts:,.0f} s, more than half of the piece: "
                        f"kept its last {kept:.0f} s")  # fmt: skip
        score = score.clip(start, score.end() + 1, clip_end=False).shift_time(-start)
    return GeneratedPiece(tokens, score, len(plan.primer_ids), warnings=warnings)


def _finish(piece: GeneratedPiece, options: SamplingOptions, budget: int) -> GeneratedPiece:
    """Cut at the asked length and the cap; the length, any shortfall and why, on the piece."""
    score, warnings = piece.score, piece.warnings
    asked, limit = _asked_tick(score, options), _limit_tick(score, options)
    reached = _last_onset(score) >= limit
    if score.end() > limit or (reached and asked is not None):
        if score.end() > limit and (asked is None or asked > limit):
            written = duration_seconds(score)
            warnings.append(f"cut at the {options.cap_seconds:g} s cap ({written:,.1f} s written)")
        score = cut_score(score, limit, mark_end=reached and asked is not None)
    piece.score, piece.seconds = score, duration_seconds(score)
    if options.seconds is not None:
        piece.shortfall = max(0.0, options.seconds - piece.seconds)
        got, asked_text, unit = piece.seconds, options.seconds, "s"
    elif options.bars is not None:
        got = score.end() / _bar_ticks(score) if note_count(score) else 0.0
        piece.shortfall = max(0.0, options.bars - got)
        asked_text, unit = options.bars, "bars"
    if piece.shortfall > 1e-6 and not reached:
        piece.token_cap_reached = True
        warnings.append(
            f"{got:.1f} {unit}, {piece.shortfall:.1f} {unit} short of the asked {asked_text:g}: "
            f"the cap of {budget:,} new tokens ran out first (a larger token cap reaches it)"
        )
    if note_count(score) == 0:
        warnings.append("no notes came out (the model wrote only silence)")
    return piece
