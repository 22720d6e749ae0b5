"""Prediction benchmark: ``ctrkit predict`` throughput and memory, and ``Predictor.predict`` latency.

    python benchmarks/predict.py                       # 1M-row file, 5M-row file, latencies
    python benchmarks/predict.py --rows 200000 --big-rows 0

A DeepFM run is trained (one epoch) on a 200k-row synthetic twin prepared in a
temporary folder. ``ctrkit predict`` then streams Criteo-format files of
``--rows`` and ``--big-rows`` rows, each in a fresh process that reports its
streaming rate (as the command prints it, after the model is loaded), its
wall time from the start of the process (imports and loading included) and its
peak resident memory. Latency is ``Predictor.predict`` on dict rows, as a server
receives them: one impression, and 100 candidates of one request.
Targets on a 2-core CPU: >= 100,000 rows/s streamed, peak RSS < 1.5 GB at 5M
rows, one impression p99 <= 2 ms, 100 candidates p99 <= 10 ms.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from preprocessing import _peak_rss_mb, arguments, child_json, make_file  # noqa: E402  (the same file writer, child, RSS)


def train_run(root: Path) -> Path:
    from ctrkit.datasets import synthetic_criteo
    from ctrkit.preprocessing import prepare_frame
    from ctrkit.training import TrainConfig, load_config, train_run

    prepare_frame(synthetic_criteo(200_000, seed=0), root / "data")
    config = load_config(HERE.parent / "configs" / "deepfm.yaml")
    config.train = TrainConfig(**{**config.train.__dict__, "epochs": 1, "progress": False})
    train_run(config, root / "data", root / "run")
    return root / "run"


def _child(run: str, path: str, out: str) -> None:
    """`ctrkit predict` in this fresh process; prints its own report and this process's peak memory as JSON."""
    import contextlib
    import io

    start = time.perf_counter()  # imports included
    from ctrkit.cli import main

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["predict", "--run", run, "--input", path, "--output", out, "--quiet"])
    report = json.loads(printed.getvalue())
    print(json.dumps({"code": code, "rows": report["rows"], "rows_per_s": report["rows_per_s"],
                      "seconds": time.perf_counter() - start, "peak_mb": _peak_rss_mb()}))


def latency(run: Path, n_calls: int) -> dict[str, tuple[float, float]]:
    """p50 and p99 in milliseconds of Predictor.predict on 1 and on 100 dict rows."""
    from ctrkit import Predictor
    from ctrkit.datasets import synthetic_criteo

    predictor = Predictor.from_run(run)
    frame = synthetic_criteo(5_000, seed=7)
    rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    out = {}
    for size in (1, 100):
        batches = [rows[i * size % 4_900:][:size] for i in range(n_calls)]
        for batch in batches[:50]:
            predictor.predict(batch)  # warm-up: lookups built, allocator warm
        times = []
        for batch in batches:
            start = time.perf_counter()
            predictor.predict(batch)
            times.append(time.perf_counter() - start)
        out[size] = (1e3 * float(np.percentile(times, 50)), 1e3 * float(np.percentile(times, 99)))
    return out


def main() -> None:
    args = arguments(__doc__, _child, "0 skips the memory run", calls=(2_000, "Predictor.predict calls per figure"))
    if args is None:
        return

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print("training a DeepFM run (200k-row twin, 1 epoch) ...", flush=True)
        run = train_run(tmp)
        p50_1, p99_1 = latency(run, args.calls)[1]
        p50_100, p99_100 = latency(run, args.calls // 4)[100]
        print(f"\nPredictor.predict latency (dict rows, {args.calls:,} / {args.calls // 4:,} calls)")
        print(f"  1 impression    p50 {p50_1:6.2f} ms   p99 {p99_1:6.2f} ms   (target p99 <= 2 ms)")
        print(f"  100 candidates  p50 {p50_100:6.2f} ms   p99 {p99_100:6.2f} ms   (target p99 <= 10 ms)")
        for rows in (args.rows, args.big_rows):
            if not rows:
                continue
            print(f"\nwriting a {rows:,}-row Criteo file ...", flush=True)
            path = make_file(tmp / f"test{rows}.txt", rows)
            r = child_json(__file__, run, path, tmp / "preds.parquet")
            assert r["code"] == 0
            print(f"ctrkit predict: {r['rows']:,} rows streamed at {r['rows_per_s']:,.0f} rows/s (target >= 100,000); "
                  f"{r['seconds']:.1f} s in all, Python start-up and model loading included "
                  f"({r['rows'] / r['seconds']:,.0f} rows/s); peak RSS {r['peak_mb']:,.0f} MB (target < 1,500 MB at 5M rows)")
            path.unlink()


if __name__ == "__main__":
    main()
