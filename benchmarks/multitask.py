"""Multi-task benchmark: clicks and conversions on the synthetic twin, per variant and per task (chapter 08).

    python benchmarks/multitask.py                        # every variant x 3 seeds on 200,000 rows
    python benchmarks/multitask.py --variants esmm click-only --seeds 0 --rows 50000
    python benchmarks/multitask.py --json ctrkit/results/multitask.json

Variants: ``click-only``, the baseline, is configs/transformer.yaml trained on
the clicked impressions only with the conversion label (a plain CVR model);
``esmm``, ``mmoe`` and ``ple`` are configs/<name>.yaml, unchanged, trained on
every impression with labels [click, conversion]; ``esmm (uncertainty)`` and
``esmm (embedding)`` change one setting of configs/esmm.yaml. The twin is
``synthetic_criteo(rows, seed=0)`` split 80/10/10 at random; its
``p_conversion`` is the truth the post-click pCVR is scored against on every
impression (``cvr_true_logloss``, ``cvr_true_ce``: lower is better).

Prints, per variant, the mean ± std over seeds of :func:`ctrkit.metrics.funnel_report`'s
metrics on the test split, training samples/s and parameters.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {  # name -> (config, changes to its model section)
    "click-only": ("transformer", {}),
    "esmm": ("esmm", {}),
    "mmoe": ("mmoe", {}),
    "ple": ("ple", {}),
    "esmm (uncertainty)": ("esmm", {"task_weighting": "uncertainty"}),
    "esmm (embedding)": ("esmm", {"encoder": "embedding"}),
}
SHOWN = ["ctr_auc", "cvr_auc", "cvr_auc_all", "cvr_true_logloss", "cvr_true_ce", "cvr_mean_ratio", "ctcvr_auc",
         "ctcvr_logloss", "train_sps"]


def load_data(rows: int):
    from ctrkit.datasets import split, synthetic_criteo
    from ctrkit.preprocessing import CTRPreprocessor, CTRTensors

    frames = split(synthetic_criteo(rows, seed=0), seed=0)
    pre = CTRPreprocessor(labels=("click", "conversion")).fit(frames[0])
    tensors = [CTRTensors.from_frame(pre.transform(f), pre.spec) for f in frames]
    return pre, frames[2], tensors


def run(variant: str, seed: int, pre, test_frame, tensors) -> dict:
    import torch

    from ctrkit import Predictor, metrics
    from ctrkit.models import build
    from ctrkit.models.multitask import clicked_only
    from ctrkit.training import fit, load_config

    name, changes = VARIANTS[variant]
    config = load_config(ROOT / "configs" / f"{name}.yaml")
    train, val, test = tensors
    if variant == "click-only":
        train, val = clicked_only(train), clicked_only(val)
    torch.manual_seed(seed)
    model = build(name, pre.spec, **(config.hparams | changes))
    labels = config.labels if variant != "click-only" else ("conversion",)
    started = time.perf_counter()
    history = fit(model, train, val, replace(config.train, seed=seed, progress=False, device="cpu"), labels=labels)
    seconds = time.perf_counter() - started
    predictor = Predictor(model, pre, labels, batch_size=16384)  # a multi-task model's outputs: click, conversion, ctcvr
    p = predictor.probabilities(predictor.logits(test), calibrated=False)
    truth = dict(click=test_frame["click"], conversion=test_frame["conversion"], p_cvr_true=test_frame["p_conversion"])
    if variant == "click-only":
        scores = metrics.funnel_report(**truth, p_cvr=p[:, 0])
    else:
        scores = metrics.funnel_report(**truth, p_click=p[:, 0], p_cvr=p[:, 1], p_ctcvr=p[:, 2])
    return {"seed": seed, **scores, "epochs": len(history), "seconds": seconds,
            "train_sps": len(train) * len(history) / seconds, "parameters": sum(p.numel() for p in model.parameters())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--json", type=Path, help="write every run's figures here")
    args = parser.parse_args()

    import numpy as np
    import torch

    torch.set_num_threads(torch.get_num_threads())
    pre, test_frame, tensors = load_data(args.rows)
    clicks, conversions = int(test_frame["click"].sum()), int(test_frame["conversion"].sum())
    print(f"{args.rows:,} rows; test: {len(test_frame):,} impressions, {clicks:,} clicks, {conversions:,} conversions")
    results = {}
    print(f"{'variant':<22}" + "".join(f"{k:>22}" for k in SHOWN) + f"{'parameters':>12}")
    for variant in args.variants:
        runs = [run(variant, seed, pre, test_frame, tensors) for seed in args.seeds]
        results[variant] = runs
        cells = []
        for key in SHOWN:
            values = np.array([r.get(key, np.nan) for r in runs], dtype=float)
            fmt = "{:,.0f} ± {:,.0f}" if key == "train_sps" else "{:.4f} ± {:.4f}"
            cells.append("-" if np.isnan(values).all() else fmt.format(values.mean(), values.std()))
        print(f"{variant:<22}" + "".join(f"{c:>22}" for c in cells) + f"{runs[0]['parameters']:>12,}", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": args.rows, "seeds": args.seeds, "results": results}, indent=1,
                                        default=float))


if __name__ == "__main__":
    main()
