"""A listening test a machine runs: can a simple classifier tell generated music from real?

A classifier two-sample test (Lopez-Paz and Oquab, "Revisiting classifier two-sample tests",
ICLR 2017). Real and generated pieces are cut into equal-length excerpts, each described by
musical features (`excerpts`: texture, onset grid, structure); a logistic regression on the
standardised features (scikit-learn) learns to tell the two sides apart, and its accuracy on
excerpts it was not trained on is the figure: about 50% when these features cannot tell them
apart, near 100% when they easily can.

Cross-validated by piece (`StratifiedGroupKFold`): the excerpts of one piece are never on both
sides of a fold, or the classifier would learn each piece's fingerprint (its key, its tempo of
notes) and call it a difference. Accuracy is *balanced* (the mean of the two sides' recalls) and
the classes weighted by their excerpt counts, so unequal sides do not move chance from 50%.
The 95% interval is a bootstrap over pieces: pieces are drawn with replacement within each side
(BOOTSTRAP draws), each bringing all its excerpts' out-of-fold predictions; it says how much the
figure depends on which pieces happened to be there, the test's main source of noise.

Too few pieces or excerpts on a side (MIN_PIECES, MIN_EXCERPTS) give a refusal with its reason,
not a number. Everything is seeded: the same inputs give the same figures.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from lstm_music.evaluation.excerpts import EXCERPT_BARS, FEATURE_NAMES, piece_features
from lstm_music.evaluation.statistics import Notes

MIN_PIECES = 4  # per side: folds need pieces on both sides, and the interval needs several
MIN_EXCERPTS = 16  # per side
FOLDS = 5  # at most; fewer when a side has fewer pieces
BOOTSTRAP = 1000
MAX_PIECES = 300  # per side, at most (an evenly spread choice): bounds the test's time
# Plain words (see `words`): the interval's low end decides, so that a figure on few pieces is
# not read as more than it is.
CHANCE_HIGH = 0.60  # an accuracy up to this is near chance
EASY = 0.85  # the interval's low end from here: easy to tell apart
SAME_HIGH = 0.75  # "indistinguishable" needs the interval's high end below this
# A model's test (`model_listening_test`): pieces sampled in one batch, each long enough for a
# few excerpts (REMI: about 60 tokens a bar of a four-part chorale, 100 of a piano song).
# Measured (benchmarks/listening.py, 2 busy CPU cores, the 1.9 M-parameter shipped models):
# sampling 8 x 1024 tokens takes about 10 s, the features and the classifier 1-3 s.
LISTEN_PIECES = 8
LISTEN_TOKENS = 1024
LISTEN_SEED = 0


@dataclass(frozen=True)
class ListeningTest:
    """The test's figures, or why it was refused (`refused`; the figures are then None)."""

    real_pieces: int
    real_excerpts: int
    generated_pieces: int
    generated_excerpts: int
    accuracy: float | None  # balanced, out of fold
    low: float | None  # 95% interval (bootstrap over pieces)
    high: float | None
    folds: int
    features: int
    excerpt_bars: int
    words: str  # plain words: "indistinguishable by these features", "easy to tell apart", ...
    refused: str | None = None
    real: str = "real"  # what the real side is ("valid split"), for the report
    seconds: float = field(default=0.0, compare=False)  # features and classifier

    @property
    def ran(self) -> bool:
        return self.accuracy is not None

    def summary(self) -> str:
        """One line: the figure, its interval and counts, and the words; or the refusal."""
        counts = (
            f"{self.generated_excerpts} generated excerpts from {self.generated_pieces} "
            f"pieces against {self.real_excerpts} from {self.real_pieces} {self.real} pieces"
        )
        if not self.ran:
            return f"listening test not run: {self.refused} ({counts})"
        return (
            f"listening test: a classifier tells generated {self.excerpt_bars}-bar excerpts from "
            f"{self.real} ones {self.accuracy:.0%} of the time (95% interval {self.low:.0%}-"
            f"{self.high:.0%}; 50% is chance): {self.words} ({counts})"
        )


def listening_dict(test: ListeningTest) -> dict:
    """The test as JSON: its fields, `ran` and the one-line `summary`."""
    return {**asdict(test), "ran": test.ran, "summary": test.summary()}


def listening_from_dict(data: dict) -> ListeningTest:
    """`listening_dict`'s answer read back (the derived keys dropped)."""
    return ListeningTest(**{k: v for k, v in data.items() if k not in ("ran", "summary")})


def model_listening_test(
    checkpoint, corpus, split: str = "valid", options=None, pieces: int = LISTEN_PIECES,
    seed: int = LISTEN_SEED, real: Sequence[Notes] | None = None,
) -> ListeningTest:  # fmt: skip
    """A checkpoint's pieces against a corpus split's: `options` (`SamplingOptions`) say how to
    sample (None: `pieces` pieces of LISTEN_TOKENS tokens, the model's default temperature and
    top-p, seeded), so a caller can hold several samplings against the same split; `real`: the
    split's pieces when the caller has already read them."""
    import time

    from lstm_music.evaluation.pieces import load_reference
    from lstm_music.evaluation.statistics import notes_of
    from lstm_music.generation.generate import generate
    from lstm_music.generation.sampling import SamplingOptions

    started = time.perf_counter()
    options = options or SamplingOptions(tokens=LISTEN_TOKENS, num=pieces, seed=seed)
    if real is None:
        real = [p.notes for p in load_reference(corpus, split)]
    if real_refusal(real):  # too few real excerpts: the answer is known before any sampling
        return listening_test(real, [], seed, real_name=f"{split} split")
    sampled = [notes_of(piece.score) for piece in generate(checkpoint, options)]
    test = listening_test(real, sampled, seed, real_name=f"{split} split")
    return replace(test, seconds=time.perf_counter() - started)


def words(accuracy: float, low: float, high: float) -> str:
    """The figure in plain words, read with its interval."""
    if low >= EASY:
        return "easy to tell apart"
    if low > CHANCE_HIGH:
        return "told apart more often than chance"
    if accuracy <= CHANCE_HIGH and high < SAME_HIGH:
        return "indistinguishable by these features"
    return "not settled: the interval spans chance and clear differences (more pieces needed)"


def listening_test(
    real: Sequence[Notes], generated: Sequence[Notes], seed: int = 0, real_name: str = "real",
    bars: int = EXCERPT_BARS,
) -> ListeningTest:  # fmt: skip
    """The test on two sets of pieces (see the module docstring)."""
    import time

    started = time.perf_counter()
    sides = [_features(_spread(real), bars), _features(_spread(generated), bars)]
    counts = [(len(s), sum(len(f) for f in s)) for s in sides]
    result = _refusal(counts)
    accuracy = low = high = None
    folds = 0
    if result is None:
        groups, x, y = _stack(sides)
        folds = min(FOLDS, counts[0][0], counts[1][0])
        predicted = _out_of_fold(x, y, groups, folds, seed)
        accuracy = balanced_accuracy(y, predicted)
        low, high = _bootstrap(y, predicted, groups, seed)
        result = words(accuracy, low, high)
    return ListeningTest(
        counts[0][0], counts[0][1], counts[1][0], counts[1][1], accuracy, low, high, folds,
        len(FEATURE_NAMES), bars, "" if accuracy is None else result,
        None if accuracy is not None else result, real_name, time.perf_counter() - started,
    )  # fmt: skip


def _spread(pieces: Sequence[Notes]) -> list[Notes]:
    """At most MAX_PIECES pieces, evenly spread over the list."""
    if len(pieces) <= MAX_PIECES:
        return list(pieces)
    keep = np.linspace(0, len(pieces) - 1, MAX_PIECES).round().astype(int)
    return [pieces[i] for i in keep]


def _features(pieces: Sequence[Notes], bars: int) -> list[np.ndarray]:
    """Each piece's excerpt features; pieces without a whole excerpt left out."""
    return [f for f in piece_features(pieces, bars) if len(f)]


def real_refusal(real: Sequence[Notes], bars: int = EXCERPT_BARS) -> str | None:
    """Why the test cannot run on these real pieces whatever is generated (too few pieces or
    excerpts), or None: asked before sampling, which is the costly part."""
    side = _features(_spread(real), bars)
    return _refusal([(len(side), sum(len(f) for f in side)), (MIN_PIECES, MIN_EXCERPTS)])


def _refusal(counts: list[tuple[int, int]]) -> str | None:
    for (pieces, excerpts), side in zip(counts, ("real", "generated")):
        if pieces < MIN_PIECES:
            return (f"too few {side} pieces with a whole excerpt: {pieces}, the test needs "
                    f"{MIN_PIECES} on each side")  # fmt: skip
        if excerpts < MIN_EXCERPTS:
            return (f"too few {side} excerpts: {excerpts}, the test needs {MIN_EXCERPTS} on "
                    "each side")  # fmt: skip
    return None


def _stack(sides: list[list[np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Groups (one per piece, both sides numbered apart), features and labels (1: generated)."""
    groups, rows, labels = [], [], []
    for label, pieces in enumerate(sides):
        for features in pieces:
            groups.append(np.full(len(features), len(groups)))
            rows.append(features)
            labels.append(np.full(len(features), label))
    # no feature should be NaN or infinite; one that were would stop the classifier's fit
    x = np.nan_to_num(np.concatenate(rows), nan=0.0, posinf=0.0, neginf=0.0)
    return np.concatenate(groups), x, np.concatenate(labels)


def classifier(seed: int = 0):
    """Standardised features into a class-weighted logistic regression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    regression = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000,
                                    random_state=seed)  # fmt: skip
    return make_pipeline(StandardScaler(), regression)


def _out_of_fold(x, y, groups, folds: int, seed: int, grouped: bool = True) -> np.ndarray:
    """Each excerpt's prediction by a classifier trained on the other folds."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    predicted = np.zeros(len(y), dtype=np.int64)
    if grouped:
        splits = StratifiedGroupKFold(folds, shuffle=True, random_state=seed).split(x, y, groups)
    else:
        splits = StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence on degenerate features: the figure says
        for train, test in splits:
            if len(np.unique(y[train])) < 2:
                predicted[test] = 1 - y[test]  # cannot learn: counted as wrong, never as right
                continue
            predicted[test] = classifier(seed).fit(x[train], y[train]).predict(x[test])
    return predicted


def balanced_accuracy(y: np.ndarray, predicted: np.ndarray) -> float:
    """The mean of the two sides' recalls: 50% for any guess that ignores the input."""
    return float(np.mean([(predicted[y == c] == c).mean() for c in (0, 1)]))


def _bootstrap(y, predicted, groups, seed: int) -> tuple[float, float]:
    """The 2.5th and 97.5th percentile of the balanced accuracy over pieces drawn with
    replacement within each side."""
    rng = np.random.default_rng(seed)
    right = predicted == y
    stats = []
    for c in (0, 1):
        pieces = np.unique(groups[y == c])
        hits = np.array([right[groups == g].sum() for g in pieces], dtype=np.float64)
        sizes = np.array([(groups == g).sum() for g in pieces], dtype=np.float64)
        draws = rng.integers(0, len(pieces), size=(BOOTSTRAP, len(pieces)))
        stats.append(hits[draws].sum(axis=1) / sizes[draws].sum(axis=1))
    low, high = np.percentile((stats[0] + stats[1]) / 2, (2.5, 97.5))
    return float(low), float(high)


def split_accuracy(
    pieces: Sequence[Notes], labels: Sequence[int], grouped: bool, seed: int = 0
) -> float:
    """Balanced out-of-fold accuracy telling labelled pieces apart, folds by piece or by
    excerpt at random: shows what grouping by piece guards against (tests, benchmarks)."""
    sides = [[], []]
    for features, label in zip(piece_features(pieces), labels):
        if len(features):
            sides[label].append(features)
    groups, x, y = _stack(sides)
    predicted = _out_of_fold(x, y, groups, FOLDS, seed, grouped)
    return balanced_accuracy(y, predicted)
