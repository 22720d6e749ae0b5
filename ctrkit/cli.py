"""The ``ctrkit`` command line: ``prepare`` (chapter 02), ``train`` and ``evaluate`` (chapter 05),
``calibrate`` (chapter 06), ``predict`` (batch prediction with :class:`ctrkit.Predictor`).

Errors a user can make (a missing file, bad data, a bad config or option value:
``DataError``, ``ConfigError`` and the file errors) print one line and exit
with status 2; anything else is a traceback, because it is a bug in ctrkit.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

from ctrkit._config import ConfigError
from ctrkit.calibration import CALIBRATORS
from ctrkit.datasets import DataError

# The errors a user can cause; they print one line. Everything else is a bug and keeps its traceback.
USER_ERRORS = (DataError, ConfigError, FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError,
               PermissionError)

# What `ctrkit calibrate` prints for each split, before and after calibration (all of it is in metrics.json).
_CALIBRATION_SUMMARY = ("auc", "logloss", "ne", "brier", "ece", "mce", "calibration_ratio")


def _fractions(text: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected three numbers like 0.8,0.1,0.1, got {text!r}") from None
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"expected three numbers like 0.8,0.1,0.1, got {text!r}")
    if min(parts) < 0 or abs(sum(parts) - 1) > 1e-9 or parts[0] == 0:
        raise argparse.ArgumentTypeError(f"expected three non-negative fractions summing to 1 (train > 0), got {text!r}")
    return parts


def _names(text: str) -> tuple[str, ...]:
    names = tuple(x.strip() for x in text.split(",") if x.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"expected column names like click,conversion, got {text!r}")
    return names


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not argparse's usage block
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ctrkit", description="CTR prediction toolkit (see the ctrkit book).")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = commands.add_parser("prepare", help="read or generate data, fit the preprocessor, write parquet splits")
    p.add_argument("--source", choices=["synthetic", "criteo"], default="synthetic")
    p.add_argument("--input", type=Path, help="Criteo file (train.txt or test.txt, plain or .gz) for --source criteo")
    p.add_argument("--rows", type=_positive, help="synthetic: rows to generate (default 200000); criteo: read at most this many (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--base-rate", type=float, default=0.25, help="synthetic: mean CTR")
    p.add_argument("--out", type=Path, default=Path("data/processed"))
    p.add_argument("--split", choices=["random", "time"], default="random")
    p.add_argument("--fractions", type=_fractions, default=(0.8, 0.1, 0.1), help="train,val,test (default 0.8,0.1,0.1)")
    p.add_argument("--labels", type=_names, help="label columns to keep, e.g. click,conversion "
                   "(default: the source's own: click for Criteo, click,conversion for synthetic)")
    p.add_argument("--dense", choices=["log", "standard", "bins"], default="log", help="dense transform")
    p.add_argument("--n-bins", type=_positive, default=16)
    p.add_argument("--min-count", type=_positive, default=2, help="rarer categorical values become OOV")
    p.add_argument("--hash-threshold", type=_positive, default=None, help="hash fields with a larger vocabulary")
    p.add_argument("--hash-buckets", type=_positive, default=100_000)
    p.add_argument("--chunk-rows", type=_positive, default=250_000, help="criteo: rows per streamed chunk")
    p.add_argument("--strict", action="store_true", help="criteo: fail on the first malformed line instead of skipping it")
    p.add_argument("--quiet", action="store_true", help="no progress bars")

    t = commands.add_parser("train", help="train a model from a YAML config on prepared data")
    t.add_argument("--config", type=Path, required=True, help="a YAML run config, e.g. configs/transformer.yaml")
    t.add_argument("--data", type=Path, default=Path("data/processed"), help="the output of `ctrkit prepare`")
    t.add_argument("--out", type=Path, help="run directory (default runs/<model name>)")
    t.add_argument("--resume", action="store_true", help="continue an interrupted run from its last checkpoint")
    t.add_argument("--epochs", type=_positive, help="override train.epochs")
    t.add_argument("--device", help="override train.device (auto, cpu, cuda, cuda:1)")
    t.add_argument("--quiet", action="store_true", help="no progress bars")

    e = commands.add_parser("evaluate", help="score a trained run on one split; updates its metrics.json")
    e.add_argument("--run", type=Path, required=True, help="a run directory written by `ctrkit train`")
    e.add_argument("--split", choices=["train", "val", "test"], default="test")
    e.add_argument("--data", type=Path, help="prepared data (default: the directory the run was trained on)")

    c = commands.add_parser("calibrate", help="fit a calibrator on validation, save it in the run, report test before/after")
    c.add_argument("--run", type=Path, required=True, help="a run directory written by `ctrkit train`")
    c.add_argument("--method", choices=list(CALIBRATORS), default="isotonic")
    c.add_argument("--data", type=Path, help="prepared data (default: the directory the run was trained on)")

    r = commands.add_parser("predict", help="batch prediction: raw rows in, one probability column per output out "
                              "(per label; click, conversion and ctcvr for a multi-task run)")
    r.add_argument("--run", type=Path, required=True, help="a run directory written by `ctrkit train`")
    r.add_argument("--input", type=Path, required=True, help="a Criteo file (plain or .gz, with or without labels) "
                   "or a parquet file of raw columns")
    r.add_argument("--output", type=Path, required=True, help="the parquet file to write (row, p_<output>…)")
    r.add_argument("--chunk-rows", type=_positive, default=100_000, help="rows per streamed chunk (bounds memory)")
    r.add_argument("--raw", action="store_true", help="uncalibrated probabilities even when the run has calibrators")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _train(args: argparse.Namespace) -> dict:
    from dataclasses import replace

    from ctrkit.training import load_config, train_run

    config = load_config(args.config)
    overrides = {k: v for k, v in (("epochs", args.epochs), ("device", args.device)) if v is not None}
    config.train = replace(config.train, progress=config.train.progress and not args.quiet, **overrides)
    out = args.out or Path("runs") / config.model
    return {"run": str(out), **train_run(config, args.data, out, resume=args.resume)}


def _prepare(args: argparse.Namespace) -> dict:
    from ctrkit.preprocessing import CTRPreprocessor, prepare_criteo, prepare_frame

    from ctrkit.datasets import SYNTHETIC_LABELS

    labels = args.labels or (SYNTHETIC_LABELS if args.source == "synthetic" else None)
    pre = CTRPreprocessor(
        dense_transform=args.dense, n_bins=args.n_bins, min_count=args.min_count,
        hash_threshold=args.hash_threshold, hash_buckets=args.hash_buckets, labels=labels, seed=args.seed,
    )
    common = dict(preprocessor=pre, how=args.split, fractions=args.fractions, seed=args.seed)
    if args.source == "synthetic":
        if args.input is not None:
            raise ConfigError("--input is for --source criteo; the synthetic source generates its data")
        from ctrkit.datasets import synthetic_criteo

        df = synthetic_criteo(args.rows or 200_000, seed=args.seed, base_rate=args.base_rate)
        counts = prepare_frame(df, args.out, **common)
    else:
        if args.input is None:
            raise ConfigError("--source criteo needs --input PATH (a Criteo train.txt or test.txt, plain or .gz)")
        counts = prepare_criteo(args.input, args.out, chunk_rows=args.chunk_rows, strict=args.strict,
                                max_rows=args.rows, progress=not args.quiet, **common)
    return counts


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"ctrkit: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    warnings.showwarning = _show_warning
    start = time.perf_counter()
    try:
        if args.command == "prepare":
            counts = _prepare(args)
            print(json.dumps({"out": str(args.out), "rows": counts, "seconds": round(time.perf_counter() - start, 2)}))
        elif args.command == "train":
            result = _train(args)
            print(json.dumps({k: result[k] for k in ("run", "model", "parameters", "val", "test") if k in result}))
        elif args.command == "evaluate":
            from ctrkit.training import evaluate_run

            print(json.dumps({"run": str(args.run), "split": args.split, **evaluate_run(args.run, args.split, args.data)}))
        elif args.command == "calibrate":
            from ctrkit.training import calibrate_run

            result = calibrate_run(args.run, args.method, args.data)
            print(json.dumps({"run": str(args.run), "method": args.method,
                              **{split: _calibration_summary(s) for split, s in result.items()}}))
        elif args.command == "predict":
            from ctrkit.predictor import Predictor

            predictor = Predictor.from_run(args.run)
            streaming = time.perf_counter()
            rows = predictor.predict_file(args.input, args.output, args.chunk_rows, calibrated=not args.raw,
                                          progress=not args.quiet)
            now = time.perf_counter()
            print(json.dumps({"run": str(args.run), "output": str(args.output), "rows": rows,
                              "seconds": round(now - start, 2),  # all of it, loading the model included
                              "rows_per_s": round(rows / (now - streaming))}))  # the streaming itself
    except USER_ERRORS as e:
        print(f"ctrkit: error: {e}", file=sys.stderr)
        return 2
    return 0


def _calibration_summary(scores: dict) -> dict:
    """Before and after calibration, per output when there are several."""
    if "calibrated" not in scores:
        return {label: _calibration_summary(s) for label, s in scores.items()}
    return {"before": {k: scores[k] for k in _CALIBRATION_SUMMARY},
            "after": {k: scores["calibrated"][k] for k in _CALIBRATION_SUMMARY}}


if __name__ == "__main__":
    sys.exit(main())
