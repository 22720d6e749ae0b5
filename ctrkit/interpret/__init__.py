"""Interpretation (chapter 07): why a model predicts what it does, and whether the answer is right.

- attributions per row and field: :func:`integrated_gradients` (captum),
  :func:`shap_values` and :func:`kernel_shap` (shap), :func:`permutation_importance`,
  summarised by :func:`global_importance`;
- :func:`attention_maps` of the attention models, :func:`pair_attention`, :func:`rank_pairs`;
- :func:`embedding_umap` and :func:`representation_umap` (umap-learn).

On the synthetic twin, :func:`ctrkit.datasets.synthetic_truth` gives the true
per-field effects to check them against.
"""

from ctrkit.interpret.attention import attention_maps, pair_attention, rank_pairs
from ctrkit.interpret.attribution import (
    BASELINES, TokenModel, baseline_tokens, global_importance, integrated_gradients, kernel_shap,
    permutation_importance, shap_values,
)
from ctrkit.interpret.embeddings import embedding_umap, representation_umap

__all__ = [
    "integrated_gradients", "global_importance", "shap_values", "kernel_shap", "permutation_importance",
    "attention_maps", "pair_attention", "rank_pairs", "embedding_umap", "representation_umap", "TokenModel",
    "baseline_tokens", "BASELINES",
]
