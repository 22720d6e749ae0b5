"""Per-field attributions (chapter 07): Integrated Gradients, SHAP and permutation importance.

Every ctrkit model is ``head(embed(x_dense, x_sparse))``
(:class:`~ctrkit.models.CTRModel`): ``embed`` turns the raw inputs into one
token per field, ``head`` the tokens into logits. :class:`TokenModel` is the
model's ``head`` as a function of the tokens, so an attribution method works in
embedding space, where a categorical id has a meaningful "in between", and sums
each field's attribution over its embedding dimensions.

- :func:`integrated_gradients` (Sundararajan et al. 2017) with captum: the path
  integral of the gradient from a baseline to the row; by completeness the
  attributions add up to logit(row) − logit(baseline), up to the reported delta.
- :func:`shap_values`: shap's ``GradientExplainer`` (expected gradients: IG
  averaged over baselines drawn from a background sample), and
  :func:`kernel_shap`, a model-agnostic reference at field level for a few rows.
- :func:`permutation_importance` (Breiman 2001): how much the validation logloss
  grows when one field's column is shuffled.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from ctrkit import metrics
from ctrkit.models.layers import CTRModel, FeatureEmbedding
from ctrkit.preprocessing.loader import CTRTensors
from ctrkit.preprocessing.spec import MISSING, MISSING_FLAG, OOV, FeatureSpec

BASELINES = ("zeros", "mean", "oov")


class TokenModel(nn.Module):
    """``model.head`` (model in eval mode) as a function of its tokens: ``forward(*tokens) → (B, 1)``.

    ``tokens(x_dense, x_sparse)`` is ``model.embed``: a tuple of (B, F, D_k)
    tensors, one row per field. ``fields`` names the fields (numeric first, as
    the models order them); :meth:`per_field` sums attributions of the tokens
    into a (B, F) array. ``output`` picks the logit of a multi-label model.
    """

    def __init__(self, model: nn.Module, output: int | None = None):
        super().__init__()
        self.model, self.output = model.eval(), output
        embeddings = [m for m in model.modules() if isinstance(m, FeatureEmbedding)]
        if not isinstance(model, CTRModel) or not embeddings:
            raise ValueError(f"{type(model).__name__} is not a ctrkit model (embed + head) to attribute through")
        self.spec: FeatureSpec = embeddings[0].spec
        self.fields = list(self.spec.fields)

    def tokens(self, x_dense: torch.Tensor, x_sparse: torch.Tensor) -> tuple[torch.Tensor, ...]:
        with torch.no_grad():
            return tuple(t.detach() for t in self.model.embed(x_dense, x_sparse))

    def forward(self, *tokens: torch.Tensor) -> torch.Tensor:
        logits = self.model.head(tokens)
        if logits.ndim == 2:
            logits = logits[:, self.output or 0]
        return logits[:, None]  # (B, 1)

    def per_field(self, attributions) -> np.ndarray:
        """Token attributions (one array per token tensor, (B, F, D_k)) summed to (B, F)."""
        return sum(np.asarray(a.detach().cpu() if torch.is_tensor(a) else a, dtype=np.float64).sum(-1)
                   for a in attributions)

    def mix(self, tokens, baseline, keep: np.ndarray) -> tuple[torch.Tensor, ...]:
        """Tokens of ``tokens`` for the fields where ``keep`` (B, F) is true, of ``baseline`` elsewhere."""
        k = torch.as_tensor(keep, dtype=tokens[0].dtype, device=tokens[0].device)[..., None]  # (B, F, 1)
        return tuple(k * t + (1 - k) * b for t, b in zip(tokens, baseline))


def baseline_tokens(token_model: TokenModel, tokens, baseline: str, reference=None) -> tuple[torch.Tensor, ...]:
    """The tokens of a baseline row, broadcast to the rows of ``tokens``.

    ``"zeros"``: every token is the zero vector. ``"mean"``: each token is its
    mean over ``reference`` (the tokens of a sample, e.g. the training rows;
    default: ``tokens`` themselves), the "average impression". ``"oov"``: every
    categorical field is out-of-vocabulary and every numeric field missing, the
    impression the model knows nothing about (a binned numeric field is missing too).
    """
    if baseline == "zeros":
        return tuple(torch.zeros_like(t) for t in tokens)
    if baseline == "mean":
        reference = tokens if reference is None else reference
        return tuple(r.mean(0, keepdim=True).expand_as(t).contiguous() for r, t in zip(reference, tokens))
    if baseline == "oov":
        spec, device = token_model.spec, tokens[0].device
        x_dense = torch.tensor([[float(c.role == MISSING_FLAG) for c in spec.dense]], device=device)  # every flag up
        x_sparse = torch.tensor([[MISSING if s.binned else OOV for s in spec.sparse]], device=device)
        return tuple(t.expand_as(u).contiguous() for t, u in zip(token_model.tokens(x_dense, x_sparse), tokens))
    raise ValueError(f"baseline must be one of {', '.join(BASELINES)}, got {baseline!r}")


def _rows(x_dense, x_sparse) -> tuple[torch.Tensor, torch.Tensor]:
    x_dense, x_sparse = torch.as_tensor(x_dense, dtype=torch.float32), torch.as_tensor(x_sparse, dtype=torch.long)
    if x_dense.shape[0] != x_sparse.shape[0]:
        raise ValueError(f"x_dense has {x_dense.shape[0]} rows and x_sparse {x_sparse.shape[0]}")
    return x_dense, x_sparse


def integrated_gradients(model: nn.Module, x_dense, x_sparse, baseline: str = "mean", n_steps: int = 50,
                         reference: CTRTensors | None = None, batch_size: int = 256, output: int | None = None,
                         progress: bool = False) -> tuple[pd.DataFrame, np.ndarray]:
    """Integrated Gradients of the logit per row and field, with captum. Chapter 07.

    Returns ``(attributions, delta)``: a DataFrame (N, F) with one column per
    field, and each row's convergence delta, Σ attributions − (logit(row) −
    logit(baseline)), which shrinks as ``n_steps`` grows (Gauss-Legendre
    quadrature). ``baseline`` is ``"zeros"``, ``"mean"`` (the mean token of
    ``reference``, default the rows themselves) or ``"oov"``; see
    :func:`baseline_tokens`. Rows go through in batches of ``batch_size``, each
    expanded ``n_steps`` times. This is captum's ``LayerIntegratedGradients``
    over the embedding layers, with the baseline given in the layers' output
    space so that the zero and mean-embedding baselines exist.
    """
    with warnings.catch_warnings():  # captum and shap warn on import (tqdm's notebook check, matplotlib)
        warnings.simplefilter("ignore")
        from captum.attr import IntegratedGradients

    x_dense, x_sparse = _rows(x_dense, x_sparse)
    device = next(model.parameters()).device
    token_model = TokenModel(model, output)
    ref = None
    if baseline == "mean" and reference is not None:
        ref = token_model.tokens(reference.x_dense.to(device), reference.x_sparse.to(device))
    elif baseline == "mean":
        ref = token_model.tokens(x_dense.to(device), x_sparse.to(device))
    ig = IntegratedGradients(token_model)
    values, deltas = [], []
    starts = range(0, len(x_dense), batch_size)
    for start in tqdm(starts, desc="integrated gradients", disable=not progress, leave=False):
        tokens = token_model.tokens(x_dense[start:start + batch_size].to(device),
                                    x_sparse[start:start + batch_size].to(device))
        base = baseline_tokens(token_model, tokens, baseline, ref)
        attributions, delta = ig.attribute(tokens, baselines=base, target=0, n_steps=n_steps,
                                           return_convergence_delta=True)
        values.append(token_model.per_field(attributions))
        deltas.append(delta.detach().cpu().numpy())
    return pd.DataFrame(np.concatenate(values), columns=token_model.fields), np.concatenate(deltas)


def global_importance(attributions: pd.DataFrame) -> pd.Series:
    """Mean absolute attribution per field, largest first: how much each field moves predictions. Chapter 07."""
    return attributions.abs().mean().sort_values(ascending=False, kind="stable")


def shap_values(model: nn.Module, x_dense, x_sparse, background: CTRTensors, n_samples: int = 200,
                seed: int = 0, batch_size: int = 2048, output: int | None = None) -> pd.DataFrame:
    """SHAP values per row and field with shap's ``GradientExplainer`` on the embedding tokens. Chapter 07.

    Expected gradients: IG with the baseline drawn at random from
    ``background`` (a sample of rows, e.g. 200 training rows) and a random
    point on the path, ``n_samples`` draws per row. The values of a row add up,
    in expectation, to its logit minus the mean logit over the background.
    ``batch_size`` is how many of the draws go through the model at once.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import shap

    x_dense, x_sparse = _rows(x_dense, x_sparse)
    device = next(model.parameters()).device
    token_model = TokenModel(model, output)
    data = list(token_model.tokens(background.x_dense.to(device), background.x_sparse.to(device)))
    explainer = shap.GradientExplainer(token_model, data, batch_size=batch_size)
    tokens = list(token_model.tokens(x_dense.to(device), x_sparse.to(device)))
    values = explainer.shap_values(tokens, nsamples=n_samples, rseed=seed)
    values = values if isinstance(values, list) else [values]  # shap unwraps a single input
    values = [np.asarray(v)[..., 0] if np.asarray(v).ndim == t.ndim + 1 else v for v, t in zip(values, tokens)]
    return pd.DataFrame(token_model.per_field(values), columns=token_model.fields)


def kernel_shap(model: nn.Module, x_dense, x_sparse, baseline: str = "mean", reference: CTRTensors | None = None,
                n_samples: int = 2048, seed: int = 0, output: int | None = None) -> pd.DataFrame:
    """Model-agnostic SHAP values with shap's ``KernelExplainer``, a field at a time: a slow reference. Chapter 07.

    A coalition of fields keeps those fields' tokens and replaces the others by
    the baseline's (:func:`baseline_tokens`); KernelSHAP fits Shapley values of
    that game from ``n_samples`` coalitions. Use it on a handful of rows.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import shap

    x_dense, x_sparse = _rows(x_dense, x_sparse)
    device = next(model.parameters()).device
    token_model = TokenModel(model, output)
    ref = None if reference is None else token_model.tokens(reference.x_dense.to(device), reference.x_sparse.to(device))
    n_fields = len(token_model.fields)
    rows = []
    for i in range(len(x_dense)):
        tokens = token_model.tokens(x_dense[i:i + 1].to(device), x_sparse[i:i + 1].to(device))
        base = baseline_tokens(token_model, tokens, baseline, ref)

        def game(keep: np.ndarray) -> np.ndarray:
            expanded = tuple(t.expand(len(keep), *t.shape[1:]) for t in tokens)
            base_expanded = tuple(b.expand(len(keep), *b.shape[1:]) for b in base)
            with torch.no_grad():
                return token_model(*token_model.mix(expanded, base_expanded, keep))[:, 0].cpu().numpy()

        explainer = shap.KernelExplainer(game, np.zeros((1, n_fields)))
        np.random.seed(seed)  # KernelExplainer draws its coalitions from numpy's global generator
        rows.append(explainer.shap_values(np.ones((1, n_fields)), nsamples=n_samples, silent=True,
                                          l1_reg=False)[0])
    return pd.DataFrame(np.asarray(rows), columns=token_model.fields)


def permutation_importance(model: nn.Module, data: CTRTensors, n_repeats: int = 3, seed: int = 0,
                           batch_size: int = 16384, progress: bool = False) -> pd.Series:
    """How much the logloss on ``data`` grows when one field is shuffled, averaged over ``n_repeats``. Chapter 07.

    Model-agnostic and about the model's use of a field as a whole, not a row:
    a field the model ignores scores about 0. A numeric field is shuffled with
    its missing indicator.
    """
    from ctrkit.training import predict_proba

    if data.y is None:
        raise ValueError("permutation importance needs labels")
    y, device = data.y.numpy(), next(model.parameters()).device
    base = metrics.logloss(y, predict_proba(model, data, batch_size, device))
    spec = TokenModel(model).spec
    fields = spec.fields
    columns = {f: ("dense", [i for i, c in enumerate(spec.dense) if c.field == f]) for f in spec.numeric_fields}
    columns |= {s.name: ("sparse", [j]) for j, s in enumerate(spec.sparse)}
    rng = np.random.default_rng(seed)
    scores = {}
    for name in tqdm(fields, desc="permutation importance", disable=not progress, leave=False):
        kind, cols = columns[name]
        losses = []
        for _ in range(n_repeats):
            order = torch.as_tensor(rng.permutation(len(y)))
            x_dense, x_sparse = data.x_dense.clone(), data.x_sparse.clone()
            if kind == "dense":
                x_dense[:, cols] = data.x_dense[order][:, cols]
            else:
                x_sparse[:, cols] = data.x_sparse[order][:, cols]
            p = predict_proba(model, CTRTensors(x_dense, x_sparse), batch_size, device)
            losses.append(metrics.logloss(y, p) - base)
        scores[name] = float(np.mean(losses))
    return pd.Series(scores).sort_values(ascending=False, kind="stable")
