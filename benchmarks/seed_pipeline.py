"""The straightforward preprocessing pipeline that ctrkit's ``prepare`` is measured against.

It is what a first notebook usually does, and what the project's seed code did:
pandas ``read_csv``, a scikit-learn ``LabelEncoder`` per categorical column,
``StandardScaler`` on the dense columns, ``train_test_split`` twice, and three
parquet files. It has no vocabulary cut-off, no OOV handling and cannot stream.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder, StandardScaler

from ctrkit.datasets import DENSE, SPARSE, criteo_columns


def seed_pipeline(path: str | Path, out: str | Path, seed: int = 0) -> dict[str, int]:
    df = pd.read_csv(path, sep="\t", header=None, names=criteo_columns(True))
    df[SPARSE] = df[SPARSE].fillna("-1")
    df[DENSE] = df[DENSE].fillna(0)
    for c in SPARSE:
        df[c] = LabelEncoder().fit_transform(df[c])
    df[DENSE] = StandardScaler().fit_transform(df[DENSE])
    train, rest = train_test_split(df, test_size=0.2, random_state=seed)
    val, test = train_test_split(rest, test_size=0.5, random_state=seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name, part in (("train", train), ("val", val), ("test", test)):
        part.to_parquet(out / f"{name}_data.parquet")
    return {"train": len(train), "val": len(val), "test": len(test)}
