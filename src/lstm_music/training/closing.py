"""What comes after the last training step, inside the time budget: the loss plot and the
closing report (held-out scoring against the yardsticks, the train/held-out gap, a copy check).

A time budget covers the whole run, from the command's start to its last line. The trainer
keeps time for this closing work while it trains (`reserve_seconds`) and, once it stops, the
report is fitted to the time that is really left (`plan_report`): fewer tokens scored, then no
copy check, then no report at all, with a note saying so. Both estimate from the run's measured
scoring speed (seconds per token of its validations) and the corpus's own piece lengths.
"""

from __future__ import annotations

from dataclasses import dataclass

from lstm_music.corpus.store import Corpus
from lstm_music.errors import LstmMusicError
from lstm_music.evaluation.likelihood import score_pieces
from lstm_music.evaluation.listening import LISTEN_TOKENS, ListeningTest
from lstm_music.evaluation.report import (
    COPY_PIECES,
    COPY_TOKENS,
    HELD_OUT_TOKENS_CAP,
    TRAIN_TOKENS_CAP,
    TRAIN_TOKENS_FLOOR,
    HeldOutReport,
    held_out_sample,
    held_out_split,
    run_report,
)
from lstm_music.evaluation.sampling_choice import (
    CANDIDATES,
    choose_sampling,
    record_choice,
    split_refusal,
)
from lstm_music.model.checkpoint import load_checkpoint
from lstm_music.model.runs import REPORT_FILE

# Measured on 20 files of the seed's folder, the default model, 2 CPU threads: scoring 0.065 ms
# a token (a fifth of a training step's time per token), the report 3.5 s for 47,000 tokens
# scored and 4 x 200 sampled (0.5 s: about 40 scored tokens' time per sampling step).
PLOT_SECONDS = 1.5  # loss.png: importing matplotlib (0.5-0.7 s) and drawing
REPORT_FIXED_SECONDS = 1.0  # loading the checkpoints and the training notes, writing the file
REPORT_SHARE = 0.25  # at most this share of a time budget is kept for the report
CAPS = (HELD_OUT_TOKENS_CAP, 100_000, 50_000, 20_000, 10_000, 5_000, 2_000)  # tried in turn
SAMPLE_STEP_TOKENS = 64  # one sampling step of the copy check, in scored tokens' time
SAMPLE_STEP_SECONDS = 0.002  # ... and at least this (a small model's step is all overhead)
# the listening test: LISTEN_TOKENS sampling steps (its pieces in one batch), then its features
# and the classifier's folds and bootstrap: 1.7-6 s measured on the seed's songs (RESULTS)
LISTEN_FIT_SECONDS = 4.0
CHOICE_FIT_SECONDS = 1.5  # ... per candidate of the sampling's choice (10-15 s for six, RESULTS)
PROBE_TOKENS = (16, 256)  # scored to measure the scoring speed just before the report
PROBE_SHARE = 0.02  # ... taking about this share of the time budget, as foreseen


@dataclass(frozen=True)
class ReportPlan:
    """What the closing report may do in the time left: tokens scored, pieces sampled."""

    tokens_cap: int
    copy_pieces: int
    seconds: float  # its estimated duration


def scored_tokens(corpus: Corpus, cap: int) -> int:
    """Tokens the report scores at `cap`: the held-out sample twice (the model, and the base
    model when there is one), and the sample of training pieces for the gap."""
    split, _ = held_out_split(corpus)
    held_out = 0
    if split is not None:
        pieces = corpus.split(split)
        if sum(len(p.ids) + 1 for p in pieces) > cap:
            pieces = held_out_sample(pieces, cap)
        held_out = sum(len(p.ids) + 1 for p in pieces)
    train = sum(len(p.ids) for p in corpus.split("train"))
    gap = min(train, TRAIN_TOKENS_CAP, cap, max(TRAIN_TOKENS_FLOOR, held_out))
    return 2 * held_out + gap


def report_seconds(corpus: Corpus, per_token: float, cap: int, copy_pieces: int) -> float:
    """The report's estimated duration at `cap` tokens with `copy_pieces` sampled pieces (and
    with them the listening test's: `run_report` runs both or neither)."""
    step = max(SAMPLE_STEP_TOKENS * per_token, SAMPLE_STEP_SECONDS)
    sampling = (COPY_TOKENS + LISTEN_TOKENS) * step + LISTEN_FIT_SECONDS if copy_pieces else 0.0
    return REPORT_FIXED_SECONDS + scored_tokens(corpus, cap) * per_token + sampling


def choice_seconds(per_token: float, candidates: int = len(CANDIDATES)) -> float:
    """The default sampling's choice: a listening test per candidate (see `report_seconds`)."""
    step = max(SAMPLE_STEP_TOKENS * per_token, SAMPLE_STEP_SECONDS)
    return candidates * (LISTEN_TOKENS * step + CHOICE_FIT_SECONDS)


def reserve_seconds(corpus: Corpus | None, per_token: float, budget: float) -> float:
    """Seconds to keep free of training for the closing work: the plot, and the report
    (`corpus` given): the full one if it takes at most `REPORT_SHARE` of the `budget`, else
    that share or the smallest report, whichever is longer; no time for a report whose
    smallest form would take over half the budget (it is skipped, with a note)."""
    if corpus is None:
        return PLOT_SECONDS
    full = report_seconds(corpus, per_token, HELD_OUT_TOKENS_CAP, COPY_PIECES)
    full += choice_seconds(per_token)
    smallest = report_seconds(corpus, per_token, CAPS[-1], 0)
    if smallest > budget / 2:
        return PLOT_SECONDS
    return PLOT_SECONDS + min(full, max(REPORT_SHARE * budget, smallest))


def plan_report(corpus: Corpus, per_token: float, seconds_left: float | None) -> ReportPlan | None:
    """The largest report that fits in `seconds_left` (None: no limit, the full report);
    None when not even the smallest one fits."""
    if seconds_left is None:
        return ReportPlan(HELD_OUT_TOKENS_CAP, COPY_PIECES, 0.0)
    for copy_pieces in (COPY_PIECES, 0):
        for cap in CAPS:
            seconds = report_seconds(corpus, per_token, cap, copy_pieces)
            if seconds <= seconds_left:
                return ReportPlan(cap, copy_pieces, seconds)
    return None


def _probe(trainer, per_token: float) -> float:
    """Seconds per token of scoring now: a short stretch of a held-out piece, scored (about
    `PROBE_SHARE` of the budget at the `per_token` foreseen). The machine may be busier than
    when the run last validated, or it never did: the plan must not rest on other conditions."""
    pieces = trainer.valid_ids or [piece.ids for piece in trainer.corpus.split("train")]
    if not pieces:
        return 0.0
    tokens = PROBE_SHARE * trainer.config.max_minutes * 60 / max(per_token, 1e-9)
    ids = min(pieces, key=len)[: int(min(max(tokens, PROBE_TOKENS[0]), PROBE_TOKENS[1]))]
    began = trainer.clock()
    score_pieces(trainer.model, [ids])
    return (trainer.clock() - began) / (len(ids) + 1)


def closing_report(trainer) -> HeldOutReport | None:
    """The closing report of a finished run (`trainer`: its `Trainer`), as large as the time
    left in its budget allows; a note when it was cut or skipped. A skipped report leaves no
    report.json: an earlier one described other weights."""
    corpus, run_dir, per_token = trainer.corpus, trainer.run_dir, trainer.scoring_per_token()
    seconds_left = None
    if trainer.config.max_minutes:
        per_token = max(per_token, _probe(trainer, per_token))
        seconds_left = trainer.started + trainer.config.max_minutes * 60 - trainer.clock()
    plan = plan_report(corpus, per_token, seconds_left)
    if plan is None:
        (run_dir / REPORT_FILE).unlink(missing_ok=True)
        smallest = report_seconds(corpus, per_token, CAPS[-1], 0)
        trainer.note(
            f"no closing report: {max(seconds_left or 0, 0):.0f} s of the time budget were "
            f"left and the smallest report takes about {smallest:.0f} s"
        )
        return None
    device = str(trainer.runtime.device)
    listened = None
    if plan.copy_pieces:  # time for sampling: the default sampling first, the report uses it
        left = None if seconds_left is None else seconds_left - plan.seconds
        listened = choose_default_sampling(trainer, per_token, left)
    try:
        report = run_report(
            run_dir, corpus, plan.copy_pieces, device, plan.tokens_cap, listened=listened
        )
    except LstmMusicError as error:  # the run is saved whatever happens here
        trainer.note(f"no closing report: {error}")
        return None
    cuts = []
    if scored_tokens(corpus, plan.tokens_cap) < scored_tokens(corpus, HELD_OUT_TOKENS_CAP):
        cuts.append(f"at most {plan.tokens_cap:,} tokens scored")
    if not plan.copy_pieces:
        cuts.append("no copy check")
    if cuts:
        trainer.note(f"the closing report was cut to fit the time budget: {', '.join(cuts)}")
    return report


def choose_default_sampling(
    trainer, per_token: float, seconds_left: float | None
) -> ListeningTest | None:
    """Choose the run's default temperature and top-p by the listening test on the valid split
    (`evaluation.sampling_choice`) and record it in its best checkpoint, when the time left
    allows; a note says what was chosen, or why not. The chosen candidate's test, which is the
    report's own (same pieces, seed and sampling), or None."""
    refused = split_refusal(trainer.corpus, "valid")
    if refused:  # the valid split cannot hold the test: no time question to ask
        trainer.note(f"the default sampling was kept: {refused}")
        return None
    fit = len(CANDIDATES)  # as many candidates as the time left allows, today's default first
    while seconds_left is not None and fit and choice_seconds(per_token, fit) > seconds_left:
        fit -= 1
    if fit < 2:  # the default alone chooses nothing
        needed = choice_seconds(per_token, 2)
        trainer.note(
            f"the default sampling was not chosen by the listening test: about {needed:.0f} s "
            f"needed, {max(seconds_left or 0, 0):.0f} s of the time budget left"
        )
        return None
    if fit < len(CANDIDATES):
        trainer.note(f"the sampling choice was cut to fit the time budget: {fit} candidates")
    try:
        checkpoint = load_checkpoint(trainer.run_dir, str(trainer.runtime.device))
        choice = choose_sampling(checkpoint, trainer.corpus, "valid", CANDIDATES[:fit])
        if not choice.chosen:
            trainer.note(f"the default sampling was kept: {choice.refused}")
            return None
        record_choice(checkpoint, choice)
    except LstmMusicError as error:  # the run is saved whatever happens here
        trainer.note(f"the default sampling was not chosen: {error}")
        return None
    trainer.note(
        f"default sampling chosen by the listening test on the valid split: temperature "
        f"{choice.temperature:g}, top-p {choice.top_p:g} (told apart {choice.accuracy:.0%})"
    )
    chosen = (choice.temperature, choice.top_p)
    return next((c.test for c in choice.candidates if (c.temperature, c.top_p) == chosen), None)


__all__ = [
    "ReportPlan",
    "choice_seconds",
    "choose_default_sampling",
    "closing_report",
    "plan_report",
    "report_seconds",
    "reserve_seconds",
    "scored_tokens",
]
