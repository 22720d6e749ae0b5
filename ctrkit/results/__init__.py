"""The benchmark figures the book quotes (chapters 03-05), as committed by ``benchmarks/models.py --json``.

``models.json`` is the model table on both twin worlds, ``ablation.json``
chapter 04's Transformer ablation, ``precision.json`` the Transformer in fp32
and under CPU bf16 autocast in one run (chapter 05), ``peers.json`` the speed
against deepctr-torch. They are
measurements from one machine (2 CPU cores), kept in the package so that a
chapter opened on Colab reads the same figures as the rendered book; rerun the
benchmark to measure your own.
"""

from __future__ import annotations

import json
from importlib.resources import files

import numpy as np
import pandas as pd

NAMES = ("models", "ablation", "precision", "peers")


def load(name: str) -> list[dict]:
    """The raw records of ``<name>.json``: one per (world, model) with every seed's run, and the peers' speeds."""
    if name not in NAMES:
        raise ValueError(f"no benchmark results named {name!r}; choose one of {', '.join(NAMES)}")
    return json.loads(files(__package__).joinpath(f"{name}.json").read_text())


def summary(name: str) -> pd.DataFrame:
    """One row per (world, model): mean and std over seeds of test AUC and logloss, mean samples/s, parameters."""
    rows = []
    for r in load(name):
        if "runs" not in r:
            continue
        runs = pd.DataFrame(r["runs"])
        rows.append({"world": r["world"], "model": r["model"], "seeds": len(runs),
                     "auc": runs["auc"].mean(), "auc_std": runs["auc"].std(ddof=0),
                     "logloss": runs["logloss"].mean(), "logloss_std": runs["logloss"].std(ddof=0),
                     "train_sps": runs["train_sps"].mean(), "infer_sps": runs["infer_sps"].mean(),
                     "parameters": r["parameters"], "bayes_auc": r["bayes"]["auc"]})
    return pd.DataFrame(rows).set_index(["world", "model"])


def peers() -> pd.DataFrame:
    """ctrkit against deepctr-torch at equal sizes: samples/s of both and their ratios, one row per model.

    Rows "deepfm" and "autoint" give both libraries the same 39 categorical fields (numeric fields binned);
    the ", raw numerics" rows keep the numbers, which deepctr-torch leaves out of its FM and attention.
    """
    found = [r["peers"] for r in load("peers") if "peers" in r]
    return pd.DataFrame(found[-1]).T.astype(np.float64)
