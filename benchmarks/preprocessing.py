"""Preprocessing benchmark: ``ctrkit prepare`` against the seed pipeline, and a 5M-row stream.

    python benchmarks/preprocessing.py            # 1M rows side by side, then 5M rows
    python benchmarks/preprocessing.py --rows 1000000 --big-rows 0

Each pipeline runs in its own process, which reports its wall time (imports
excluded) and peak resident memory, so the two do not share a heap. Input files are
Criteo-format files written from the synthetic twin into a temporary folder.
The side-by-side comparison runs each pipeline ``--repeats`` times, alternating
(seed, ctrkit, seed, ctrkit, ...), and keeps each one's best time: a busy
machine slows a single run of either, so the best of several interleaved runs is
the figure that compares the pipelines rather than the moments they ran in.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def make_file(path: Path, rows: int, block: int = 1_000_000) -> Path:
    """A Criteo train file of ``rows`` synthetic rows, written in blocks to bound memory."""
    from ctrkit.datasets import synthetic_criteo, write_criteo

    with open(path, "wb") as out:
        for i, start in enumerate(range(0, rows, block)):
            part = path.with_suffix(f".part{i}")
            write_criteo(synthetic_criteo(min(block, rows - start), seed=i), part)
            with open(part, "rb") as f:
                shutil.copyfileobj(f, out)
            part.unlink()
    return path


def _peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM). Not ru_maxrss: Linux carries that
    over from the parent through fork + exec, so it would report the generator's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux


def _child(which: str, path: str, out: str) -> None:
    """Run one pipeline and print its figures as JSON (called in a fresh process)."""
    if which == "seed":
        sys.path.insert(0, str(HERE))
        from seed_pipeline import seed_pipeline as pipeline
    else:
        from ctrkit.preprocessing import prepare_criteo

        def pipeline(path, out):
            return prepare_criteo(path, out, progress=False)

    start = time.perf_counter()  # imports are not timed
    rows = pipeline(path, out)
    seconds = time.perf_counter() - start
    peak_mb = _peak_rss_mb()
    print(json.dumps({"rows": sum(rows.values()), "seconds": seconds, "peak_mb": peak_mb}))


def child_json(script: str, *args) -> dict:
    """Run ``script --child args…`` in a fresh Python process and return the JSON line it printed last."""
    result = subprocess.run([sys.executable, script, "--child", *map(str, args)], capture_output=True, text=True,
                            check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def run(which: str, path: Path, out: Path) -> dict:
    return child_json(__file__, which, path, out)


def arguments(doc: str, child, big_rows_help: str, **options) -> argparse.Namespace | None:
    """The command line every benchmark here shares; None when this process was a ``--child`` (it has run)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--big-rows", type=int, default=5_000_000, help=big_rows_help)
    for name, (default, text) in options.items():
        parser.add_argument(f"--{name}", type=int, default=default, help=text)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return None
    return args


def main() -> None:
    args = arguments(__doc__, _child, "0 skips the streaming run",
                     repeats=(3, "interleaved runs of each pipeline; the best counts"))
    if args is None:
        return

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print(f"writing a {args.rows:,}-row Criteo file ...", flush=True)
        path = make_file(tmp / "train.txt", args.rows)
        print(f"  {path.stat().st_size / 1e6:.0f} MB")
        runs = {"seed": [], "ctrkit": []}
        for _ in range(args.repeats):
            for which in runs:
                runs[which].append(run(which, path, tmp / which))
        seed, ours = (min(runs[w], key=lambda r: r["seconds"]) for w in ("seed", "ctrkit"))
        print(f"\n{'pipeline (best of ' + str(args.repeats) + ')':<34}{'rows':>11}{'seconds':>9}{'rows/s':>11}"
              f"{'peak RSS':>11}   all runs (s)")
        for name, r, which in (("seed (pandas + LabelEncoder)", seed, "seed"), ("ctrkit prepare", ours, "ctrkit")):
            times = ", ".join(f"{x['seconds']:.2f}" for x in runs[which])
            print(f"{name:<34}{r['rows']:>11,}{r['seconds']:>9.2f}{r['rows'] / r['seconds']:>11,.0f}"
                  f"{r['peak_mb']:>8,.0f} MB   {times}")
        print(f"speed ratio (seed time / ctrkit time, best of {args.repeats} each): {seed['seconds'] / ours['seconds']:.2f}x")
        path.unlink()

        if args.big_rows:
            print(f"\nwriting a {args.big_rows:,}-row Criteo file ...", flush=True)
            big = make_file(tmp / "big.txt", args.big_rows)
            print(f"  {big.stat().st_size / 1e6:.0f} MB")
            r = run("ctrkit", big, tmp / "big")
            print(f"ctrkit prepare, streamed: {r['rows']:,} rows in {r['seconds']:.1f} s "
                  f"({r['rows'] / r['seconds']:,.0f} rows/s), peak RSS {r['peak_mb']:,.0f} MB")


if __name__ == "__main__":
    main()
