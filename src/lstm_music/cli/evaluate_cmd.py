"""`lstm-music evaluate`: held-out likelihood and accuracy of a checkpoint on a corpus split."""

from __future__ import annotations

import argparse
import json

from lstm_music.cli.table import format_table
from lstm_music.errors import LstmMusicError

DESCRIPTION = """\
Score a trained model on every token of every piece of a corpus split (valid by default), with
the model's state carried through each whole piece: negative log-likelihood per token (nats),
perplexity, top-1 and top-5 next-token accuracy, and bits per note. For `grid` corpora also the
NLL per time step (a step's pitch tokens and its Step token summed), the figure the polyphonic
music literature reports; the first step of each piece is not scored unless --score-first-step
(as in Bai, Kolter and Koltun 2018).

--transpose-mixture -5..6 scores a different model: the average of the trained model over the
piece moved by each of those shifts (a proper probability: moving is one-to-one), weighted token
by token by how well each key has predicted the piece so far. It costs one pass per shift and
helps models trained with transposition augmentation. Say so when you report its figures.

Then the held-out report (on the valid split, or the test split with --split test): the
model's bits per note beside a uniform guess, a unigram model of the training split and a base
model (the one it was fine-tuned from, else the shipped base model when it reads the same
tokens); its loss on training pieces against the held-out loss (overfitting is warned of); with
--copy-check N, N short sampled pieces checked for runs copied from the training split; the
listening test (--listening-test N, 8 by default, 0 to skip): N sampled pieces of 1,024 tokens
cut into 4-bar excerpts and held against the held-out pieces' by a classifier cross-validated by
piece (see `lstm-music compare --help`): about 50% means these features cannot tell the model's
music from the real thing, near 100% that they easily can; and one line of verdict, which leads
with the listening test when it ran.

--choose-sampling does none of that: it chooses the model's default sampling instead. The
listening test runs on the valid split for each of a few (temperature, top-p) candidates, with
the same seeds; the one whose music the classifier finds hardest to tell from the real pieces is
chosen, today's default (1, 0.95) kept unless another is lower by more than the test's noise (the
half-width of its 95% interval, at least 3 points). The choice is written into the checkpoint
file (a copy of a shipped model, never the shipped file), and `generate` and the web page use it
whenever no temperature or top-p is given.
"""


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "evaluate",
        help="held-out likelihood of a model",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "checkpoint",
        metavar="CHECKPOINT",
        help=".safetensors file, run folder or shipped model name",
    )
    parser.add_argument(
        "corpus", metavar="CORPUS_DIR", help="a corpus prepared with the same tokenizer"
    )
    parser.add_argument("--split", choices=("valid", "test", "train"), default="valid")
    parser.add_argument(
        "--score-first-step",
        action="store_true",
        help="grid corpora: also score each piece's first step",
    )
    parser.add_argument(
        "--transpose-mixture",
        default="off",
        metavar="LOW..HIGH",
        help="score the model averaged over these transpositions (write =-5..6); off",
    )
    parser.add_argument(
        "--copy-check",
        type=int,
        default=0,
        metavar="N",
        help="sample N short pieces and look for copies of training pieces; 0 (off)",
    )
    parser.add_argument(
        "--listening-test",
        type=int,
        default=8,
        metavar="N",
        help="sample N pieces and tell them from held-out ones with a classifier; 8 (0: off)",
    )
    parser.add_argument(
        "--choose-sampling",
        action="store_true",
        help="choose the default temperature and top-p by the listening test on the valid "
        "split and record them in the checkpoint file",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, mps")
    parser.set_defaults(
        run=run_evaluate,
        setting_flags={"copy_pieces": "--copy-check", "listen_pieces": "--listening-test"},
    )


def run_evaluate(args: argparse.Namespace) -> int:
    from lstm_music.cli.report_view import report_lines
    from lstm_music.corpus.store import Corpus
    from lstm_music.evaluation.likelihood import evaluate_split
    from lstm_music.evaluation.report import held_out_report
    from lstm_music.model.checkpoint import base_of, load_checkpoint
    from lstm_music.training.distributed import pick_device

    checkpoint = load_checkpoint(args.checkpoint, pick_device(args.device))
    corpus = Corpus.load(args.corpus)
    if args.choose_sampling:
        return run_choose_sampling(args, checkpoint, corpus)
    report = evaluate_split(
        checkpoint,
        corpus,
        args.split,
        args.score_first_step,
        transpose_mixture=args.transpose_mixture,
    )
    held_out = held_out_report(
        checkpoint,
        corpus,
        "test" if args.split == "test" else "valid",
        base=base_of(checkpoint),
        copy_pieces=args.copy_check,
        scored=report,
        listen_pieces=args.listening_test,
    )
    if args.json:
        print(json.dumps({**report, "report": held_out.to_dict()}, indent=1))
        return 0
    rows = [
        ("pieces", report["pieces"]),
        ("tokens scored", report["tokens"]),
        ("NLL per token (nats)", report["nll_per_token"]),
        ("perplexity", report["perplexity"]),
        ("top-1 accuracy", report["accuracy"]),
        ("top-5 accuracy", report["top5_accuracy"]),
    ]
    if report["bits_per_note"] is not None:
        rows.append(("bits per note", report["bits_per_note"]))
    if "nll_per_step" in report:
        first = "scored" if report["first_step_scored"] else "not scored"
        rows += [
            ("NLL per time step (nats)", report["nll_per_step"]),
            (f"time steps (first of each piece {first})", report["predicted_steps"]),
        ]
    model = "model alone"
    if report["transpose_mixture"] != "off":
        model = f"mixture of the model over transpositions {report['transpose_mixture']}"
    print(f"{args.split} split of {args.corpus}; {model}")
    print(format_table(("measure", "value"), [(name, _fmt(value)) for name, value in rows]))
    print()
    print("\n".join(report_lines(held_out)))
    return 0


def run_choose_sampling(args: argparse.Namespace, checkpoint, corpus) -> int:
    """The sampling choice on the valid split: its table, and the choice written in the file."""
    from lstm_music.evaluation.sampling_choice import (
        choose_sampling,
        record_choice,
        recordable_path,
    )

    if args.split == "test":
        raise LstmMusicError("--choose-sampling uses the valid split, never the test split")
    recordable_path(checkpoint)  # a shipped model is refused before a minute of sampling
    choice = choose_sampling(checkpoint, corpus, "valid")
    path = record_choice(checkpoint, choice) if choice.chosen else None
    if args.json:
        record = choice.record() if choice.chosen else {"refused": choice.refused}
        print(json.dumps({**record, "seconds": round(choice.seconds, 1),
                          "written": str(path) if path else None}, indent=1))  # fmt: skip
        return 0
    print(format_table(("temperature", "top-p", "accuracy", "95% interval", "excerpts", "choice"),
                       [_candidate_row(c, choice) for c in choice.candidates]))  # fmt: skip
    if not choice.chosen:
        print(f"no sampling chosen, the defaults stay: {choice.refused}")
        return 0
    print(f"chosen: temperature {choice.temperature:g}, top-p {choice.top_p:g} (another "
          f"candidate had to be more than {choice.margin * 100:.1f} points below the default's "
          f"accuracy); written to {path} in {choice.seconds:.0f} s")  # fmt: skip
    return 0


def _candidate_row(candidate, choice) -> tuple[str, ...]:
    test = candidate.test
    counts = f"{test.generated_excerpts} generated / {test.real_excerpts} real"
    mark = "chosen" if (candidate.temperature, candidate.top_p) == (
        choice.temperature, choice.top_p) and choice.chosen else ""  # fmt: skip
    if not test.ran:
        return (f"{candidate.temperature:g}", f"{candidate.top_p:g}", "-", test.refused or "",
                counts, mark)  # fmt: skip
    return (f"{candidate.temperature:g}", f"{candidate.top_p:g}", f"{test.accuracy:.1%}",
            f"{test.low:.1%}-{test.high:.1%}", counts, mark)  # fmt: skip


def _fmt(value) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:.4f}"
