"""LightGBM on ctrkit's preprocessed columns: the non-neural reference (chapter 03 and ``benchmarks/models.py``).

Gradient-boosted trees are the strong baseline of tabular data. :func:`fit_lightgbm`
trains LightGBM on the frame :meth:`CTRPreprocessor.transform` makes, with the
scaled numeric columns (and missing indicators) as numbers and the vocabulary
ids as categorical features, early-stopped on the validation logloss. It is
not a :class:`~ctrkit.models.CTRModel` (no tensors, no ``build``), and
``lightgbm`` is imported only when it is called.
"""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd

from ctrkit.preprocessing.spec import FeatureSpec

# The benchmark's settings: many shallow-ish trees at a small learning rate, row and column subsampling, and
# smoothed categorical splits, so that rare ids do not get splits of their own.
PARAMS = dict(n_estimators=2000, learning_rate=0.05, num_leaves=63, min_child_samples=50, subsample=0.8,
              subsample_freq=1, colsample_bytree=0.8, cat_smooth=50, min_data_per_group=50, cat_l2=10)


def lightgbm_columns(spec: FeatureSpec) -> tuple[list[str], list[str]]:
    """(every feature column, the categorical ones) of a preprocessed frame."""
    categorical = [s.name for s in spec.sparse]
    return list(spec.dense_names) + categorical, categorical


def fit_lightgbm(train: pd.DataFrame, val: pd.DataFrame, spec: FeatureSpec, label: str = "click", seed: int = 0,
                 n_jobs: int = 2, early_stopping: int = 50, **params):
    """A ``lightgbm.LGBMClassifier`` trained on preprocessed ``train``, early-stopped on ``val``'s logloss.

    ``params`` override :data:`PARAMS`; ``model.best_iteration_`` is the number of trees kept.
    """
    try:
        import lightgbm as lgb
    except ImportError as e:  # an optional dependency: the book's extra installs it
        raise ImportError("fit_lightgbm needs lightgbm: pip install lightgbm (or ctrkit[book])") from e
    columns, categorical = lightgbm_columns(spec)
    model = lgb.LGBMClassifier(**(PARAMS | params), random_state=seed, n_jobs=n_jobs, verbose=-1)
    # lightgbm 4.6 renamed eval_set to eval_X / eval_y (and warns on the old name); earlier 4.x know only eval_set
    held_out = ({"eval_X": (val[columns],), "eval_y": (val[label],)}
                if "eval_X" in inspect.signature(model.fit).parameters else {"eval_set": [(val[columns], val[label])]})
    model.fit(train[columns], train[label], categorical_feature=categorical,
              callbacks=[lgb.early_stopping(early_stopping, verbose=False)], **held_out)
    return model


def predict_lightgbm(model, frame: pd.DataFrame, spec: FeatureSpec) -> np.ndarray:
    """Click probabilities of a preprocessed frame."""
    return model.predict_proba(frame[lightgbm_columns(spec)[0]])[:, 1]
