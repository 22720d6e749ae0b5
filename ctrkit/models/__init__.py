"""CTR models: one input interface ``(x_dense, x_sparse) → logits`` (chapters 03 and 04).

Every model is a :class:`CTRModel`: ``embed(x_dense, x_sparse)`` → tokens, and
``head(tokens)`` → logits; ``forward`` is their composition.

``build(name, spec, **hparams)`` is how configs, the CLI and the book make a
model; ``MODELS`` lists the names. Hyper-parameters are the keyword arguments
of each model's constructor; unknown names and wrong types are errors.
"""

from __future__ import annotations

import inspect

from torch import nn

from ctrkit._config import ConfigError, fill
from ctrkit.models.attention import AutoInt, CTRTransformer, attention
from ctrkit.models.classic import FM, DCNv2, DeepFM, LogisticRegression, fm_interaction
from ctrkit.models.multitask import ESMM, MMoE, PLE, ExtractionLayer, MultiTaskModel
from ctrkit.models.layers import (MLP, CTRModel, FeatureEmbedding, NumericEmbedding, SparseEmbedding,
                                  embedding_penalty, set_frequencies)
from ctrkit.preprocessing.spec import FeatureSpec

MODELS: dict[str, type[CTRModel]] = {
    "lr": LogisticRegression,
    "fm": FM,
    "deepfm": DeepFM,
    "dcnv2": DCNv2,
    "autoint": AutoInt,
    "transformer": CTRTransformer,
    "esmm": ESMM,  # multi-task (chapter 08): labels [click, conversion]
    "mmoe": MMoE,
    "ple": PLE,
}
MULTITASK = ("esmm", "mmoe", "ple")  # the models that learn labels [click, conversion] (chapter 08)


def hparams_of(name: str) -> dict:
    """The hyper-parameters a model takes and their defaults."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    params = list(inspect.signature(MODELS[name]).parameters.values())[1:]  # skip spec
    return {p.name: p.default for p in params}


def build(name: str, spec: FeatureSpec, **hparams) -> nn.Module:
    """Make model ``name`` for the features of ``spec``; see :data:`MODELS` and :func:`hparams_of`."""
    checked = fill(hparams_of(name), hparams, f"model {name!r}")
    return MODELS[name](spec, **checked)


__all__ = [
    "MODELS", "MULTITASK", "build", "hparams_of", "CTRModel", "LogisticRegression", "FM", "DeepFM", "DCNv2", "AutoInt", "CTRTransformer",
    "ESMM", "MMoE", "PLE", "MultiTaskModel", "ExtractionLayer",
    "FeatureEmbedding", "SparseEmbedding", "NumericEmbedding", "MLP", "attention", "fm_interaction",
    "embedding_penalty", "set_frequencies",
]
