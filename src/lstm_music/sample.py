"""`generate`: a checkpoint (and optionally a primer) -> new token sequences -> scores.

Generation runs the primer through the model once, then one `FastStepper` step per new token
for the whole batch of `num` pieces at a time. Special tokens are never sampled; length can be
given in tokens, or for timed tokenizers in seconds or bars (then the piece is cut exactly).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import symusic
import torch

from lstm_music.checkpoint import Checkpoint, load_checkpoint
from lstm_music.corpus import BOS_ID, SPECIAL_TOKENS
from lstm_music.errors import LstmMusicError
from lstm_music.stepper import FastStepper, pick_tokens

CHUNK = 256  # tokens generated between length checks when the length is in seconds or bars


@dataclass
class GenerateOptions:
    """How to sample; validated on creation so bad values fail before any work."""

    tokens: int = 512
    seconds: float | None = None
    bars: float | None = None
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 0.95
    greedy: bool = False
    num: int = 1
    seed: int | None = None
    primer: list[str] = field(default_factory=list)  # tokens to continue
    tempo: float | None = None  # quarter notes per minute, written into the MIDI
    program: int | None = None  # General MIDI program of every track
    include_primer: bool = True  # the score starts with the primer (the blog's output does)

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise LstmMusicError("--temperature must be greater than 0 (use --greedy for argmax)")
        if not 0 < self.top_p <= 1:
            raise LstmMusicError("--top-p must be in (0, 1]")
        if self.top_k < 0 or self.tokens < 1 or self.num < 1:
            raise LstmMusicError("--top-k must be >= 0, --tokens and --num >= 1")
        for name in ("seconds", "bars", "tempo"):
            value = getattr(self, name)
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise LstmMusicError(f"--{name} must be a positive number")
        if self.program is not None and not 0 <= self.program <= 127:
            raise LstmMusicError("--program takes a General MIDI program 0-127")


@dataclass
class GeneratedPiece:
    tokens: list[str]  # primer tokens followed by the new ones
    score: symusic.Score
    primer_length: int = 0


def _banned(vocabulary: list[str]) -> torch.Tensor:
    """Mask (V,) of ids never to sample: the special tokens."""
    mask = torch.zeros(len(vocabulary), dtype=torch.bool)
    mask[: len(SPECIAL_TOKENS)] = True
    return mask


class _Session:
    """The batch's recurrent state and next-token logits, advanced one step per token."""

    def __init__(self, checkpoint: Checkpoint, primer_ids: list[int], options, rng):
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
        self.options, self.rng = options, rng

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
            logits = np.where(self.banned, -np.inf, logits)
            out[:, t] = pick_tokens(
                logits, options.temperature, options.top_k, options.top_p, options.greedy, self.rng
            )
            logits, state = stepper.step(self._tokens(out[:, t]), state)
            logits = self._numpy(logits)
        self.logits, self.state = logits, state
        return out


def _decode(tokenizer, tokens: list[str], options: GenerateOptions) -> symusic.Score:
    """Tokens -> score; a sequence the tokenizer cannot read becomes an empty score, reported."""
    try:
        score = tokenizer.decode(tokens)
    except LstmMusicError as error:
        print(f"warning: could not decode a generated sequence ({error}); writing it empty")
        score = symusic.Score(480)
    if options.tempo is not None:
        score.tempos = [symusic.Tempo(0, float(options.tempo))]
    if options.program is not None:
        for track in score.tracks:
            track.program = options.program
    return score


def _length_reached(score: symusic.Score, options: GenerateOptions) -> bool:
    if options.seconds is not None:
        return score.note_num() > 0 and score.to("second").end() >= options.seconds
    bar_ticks = _bar_ticks(score)
    return score.note_num() > 0 and score.end() >= options.bars * bar_ticks


def _bar_ticks(score: symusic.Score) -> int:
    signature = score.time_signatures[0] if len(score.time_signatures) else None
    numerator, denominator = (signature.numerator, signature.denominator) if signature else (4, 4)
    return int(score.tpq * 4 * numerator / denominator)


def _cut(score: symusic.Score, options: GenerateOptions) -> symusic.Score:
    """Clip to exactly --seconds or --bars (notes sounding past the end are shortened)."""
    if options.seconds is not None:
        return score.to("second").clip(0, options.seconds, clip_end=True).to("tick")
    if options.bars is not None:
        return score.clip(0, int(options.bars * _bar_ticks(score)), clip_end=True)
    return score


def generate(
    checkpoint: Checkpoint | str | Path, options: GenerateOptions | None = None, **settings
) -> list[GeneratedPiece]:
    """Write `options.num` new pieces; each has its tokens (primer first) and a symusic Score.

    `generate("runs/bach/best.safetensors", tokens=400, temperature=0.9, seed=1)`
    """
    options = options or GenerateOptions(**settings)
    if not isinstance(checkpoint, Checkpoint):
        checkpoint = load_checkpoint(checkpoint)
    tokenizer = checkpoint.tokenizer()
    timed_length = options.seconds is not None or options.bars is not None
    if timed_length and not tokenizer.timed:
        raise LstmMusicError(f"--seconds/--bars need a timed tokenizer; this model uses "
                             f"{tokenizer.name!r}, which has no timing: use --tokens")  # fmt: skip
    index = {token: i for i, token in enumerate(checkpoint.vocabulary)}
    primer_ids = [index[t] for t in options.primer if t in index]
    rng = np.random.default_rng(options.seed)
    session = _Session(checkpoint, primer_ids, options, rng)
    new = np.zeros((options.num, 0), dtype=np.int64)
    while True:
        with _blas_threads(session):
            chunk = session.advance(CHUNK if timed_length else options.tokens)
        new = np.concatenate([new, chunk], 1)
        pieces = [_piece(checkpoint, primer_ids, row, tokenizer, options) for row in new]
        if not timed_length or all(_length_reached(p.score, options) for p in pieces):
            break
        if new.shape[1] > 200_000:
            raise LstmMusicError("the model did not reach the asked length in 200,000 tokens")
    for piece in pieces:
        piece.score = _cut(piece.score, options)
    return pieces


def _blas_threads(session: _Session):
    """One BLAS thread while stepping on the CPU.

    A step multiplies a few rows by the weights: too little work to share, and OpenBLAS's
    threads spin-wait for each other, which on a busy machine costs ten times over. Measured on
    the 2-core machine with other work running (benchmarks/RESULTS.md): 0.25 against 2.9-4.9 ms
    per token for one piece, 0.09 against 0.19-0.90 for 64.
    """
    from threadpoolctl import threadpool_limits

    if session.stepper.use_numpy:
        return threadpool_limits(limits=1, user_api="blas")
    return contextlib.nullcontext()


def _piece(checkpoint, primer_ids, row: np.ndarray, tokenizer, options) -> GeneratedPiece:
    vocabulary = checkpoint.vocabulary
    new = [vocabulary[i] for i in row.tolist()]
    tokens = [vocabulary[i] for i in primer_ids] + new
    score = _decode(tokenizer, tokens if options.include_primer else new, options)
    return GeneratedPiece(tokens, score, len(primer_ids))
