"""A model's default sampling (temperature, top-p), chosen by the listening test on its valid split.

Each candidate samples the same number of pieces from the same seed, and the listening test
(`listening`) holds them against the same valid pieces: the candidate whose music the classifier
finds hardest to tell from the real split (the lowest balanced accuracy) is the choice. Today's
default (the first candidate) is kept unless another is lower by more than the test's noise:
the half-width of the default's 95% interval (a bootstrap over pieces, the figure's main source
of noise), and at least MIN_MARGIN. A smaller gap is what drawing other pieces would move by, not
evidence that another sampling sounds more like the folder.

Never on the test split (a choice made there would flatter the test figures). Too few valid
pieces or excerpts, or a default whose pieces the test refuses, give a refusal with its reason:
nothing is then recorded and the defaults stay.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lstm_music.errors import LstmMusicError
from lstm_music.evaluation.listening import (
    LISTEN_PIECES,
    LISTEN_SEED,
    LISTEN_TOKENS,
    ListeningTest,
    model_listening_test,
    real_refusal,
)
from lstm_music.generation.sampling import DEFAULT_TEMPERATURE, DEFAULT_TOP_P, SamplingOptions

# (temperature, top-p), today's default first: at most six, so that the choice takes a minute or
# two on a CPU for a small model (about 10 s a candidate for the shipped 1.9 M-parameter models)
CANDIDATES: tuple[tuple[float, float], ...] = (
    (DEFAULT_TEMPERATURE, DEFAULT_TOP_P),
    (0.9, 0.95),
    (0.8, 0.95),
    (1.0, 0.9),
    (0.9, 0.9),
    (0.8, 0.9),
)
MAX_CANDIDATES = 6
MIN_MARGIN = 0.03  # balanced accuracy: a candidate must beat the default by more than this
CHOSEN_BY = "listening test on the valid split"


@dataclass(frozen=True)
class Candidate:
    """One sampling's listening test."""

    temperature: float
    top_p: float
    test: ListeningTest

    def to_dict(self) -> dict:
        """What the checkpoint records of it: the sampling, the figure, its interval, counts."""
        test = self.test
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "accuracy": test.accuracy,
            "low": test.low,
            "high": test.high,
            "generated_excerpts": test.generated_excerpts,
            "real_excerpts": test.real_excerpts,
            "refused": test.refused,
        }


@dataclass(frozen=True)
class SamplingChoice:
    """The chosen sampling and every candidate's test, or why no choice was made (`refused`:
    then temperature and top-p are the defaults and nothing should be recorded)."""

    temperature: float
    top_p: float
    accuracy: float | None
    margin: float | None  # how much lower than the default's a candidate had to be
    candidates: tuple[Candidate, ...]
    refused: str | None = None
    seconds: float = 0.0

    @property
    def chosen(self) -> bool:
        return self.refused is None

    def record(self) -> dict:
        """The checkpoint's `sampling` entry (see `Checkpoint.sampling`)."""
        if not self.chosen:
            raise LstmMusicError(f"no sampling was chosen: {self.refused}")
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "chosen_by": CHOSEN_BY,
            "accuracy": self.accuracy,
            "candidates": [candidate.to_dict() for candidate in self.candidates],
        }


def choose_sampling(
    checkpoint, corpus, split: str = "valid",
    candidates: Sequence[tuple[float, float]] = CANDIDATES, pieces: int = LISTEN_PIECES,
    tokens: int = LISTEN_TOKENS, seed: int = LISTEN_SEED,
) -> SamplingChoice:  # fmt: skip
    """Run the listening test for each (temperature, top-p) candidate, the first being the one
    kept unless another is clearly harder to tell from `split` (see the module docstring)."""
    from lstm_music.evaluation.pieces import load_reference

    if split == "test":
        raise LstmMusicError("the sampling is chosen on the valid split, never on the test split")
    if not 1 <= len(candidates) <= MAX_CANDIDATES:
        raise LstmMusicError(f"give 1 to {MAX_CANDIDATES} sampling candidates, not "
                             f"{len(candidates)}")  # fmt: skip
    # checked before any sampling: a bad candidate fails here, in the options' own words
    options = [SamplingOptions(tokens=tokens, num=pieces, seed=seed, temperature=t, top_p=p)
               for t, p in candidates]  # fmt: skip
    started = time.perf_counter()
    real = [piece.notes for piece in load_reference(corpus, split)]
    refused = real_refusal(real)
    if refused:  # known before any candidate samples (a small folder's valid split)
        return SamplingChoice(DEFAULT_TEMPERATURE, DEFAULT_TOP_P, None, None, (),
                              f"the listening test refused: {refused}", 0.0)  # fmt: skip
    tested: list[Candidate] = []
    for option in options:
        test = model_listening_test(checkpoint, corpus, split, option, seed=seed, real=real)
        tested.append(Candidate(option.temperature, option.top_p, test))
        if not test.ran and len(tested) == 1:  # the default cannot be measured: no choice
            break
    return _decide(tuple(tested), time.perf_counter() - started)


def split_refusal(corpus, split: str = "valid") -> str | None:
    """Why `split` cannot hold the listening test whatever is sampled (too few pieces or
    excerpts), or None: cheap, asked before planning the time a choice would take."""
    from lstm_music.evaluation.pieces import load_reference

    refused = real_refusal([piece.notes for piece in load_reference(corpus, split)])
    return None if refused is None else f"the listening test refused: {refused}"


def _decide(tested: tuple[Candidate, ...], seconds: float) -> SamplingChoice:
    """The lowest accuracy beyond the margin below the default's, else the default."""
    default = tested[0]
    test = default.test
    if not test.ran:
        return SamplingChoice(DEFAULT_TEMPERATURE, DEFAULT_TOP_P, None, None, tested,
                              f"the listening test refused: {test.refused}", seconds)  # fmt: skip
    margin = max(MIN_MARGIN, (test.high - test.low) / 2)
    best = default
    for candidate in tested[1:]:
        accuracy = candidate.test.accuracy
        clearly_lower = accuracy is not None and accuracy < test.accuracy - margin
        if clearly_lower and accuracy < best.test.accuracy:
            best = candidate
    return SamplingChoice(best.temperature, best.top_p, best.test.accuracy, margin, tested,
                          None, seconds)  # fmt: skip


def recordable_path(checkpoint) -> Path:
    """The checkpoint's file, where a choice may be recorded: refused (before any work) for a
    model shipped inside the package, which must stay as shipped."""
    import lstm_music

    if checkpoint.path is None:
        raise LstmMusicError("this checkpoint has no file to record the sampling in")
    path = Path(checkpoint.path).resolve()
    if path.is_relative_to(Path(lstm_music.__file__).parent.resolve()):
        raise LstmMusicError(f"{path.name} is a model shipped inside lstm-music: copy it out "
                             "first and choose the sampling for the copy")  # fmt: skip
    return path


def record_choice(checkpoint, choice: SamplingChoice) -> Path:
    """Write the choice into the checkpoint's own file, atomically, its weights kept in the
    precision they had; a choice that was not made is refused."""
    path = recordable_path(checkpoint)
    checkpoint.sampling = choice.record()
    checkpoint.save(path, half=_stored_half(path))
    return path


def _stored_half(path: Path) -> bool:
    """Whether the file holds its weights as float16 (a shipped model's copy does)."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as stored:
        return all(stored.get_slice(name).get_dtype() == "F16" for name in stored.keys())  # noqa: SIM118
