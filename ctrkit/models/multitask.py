"""Multi-task heads for clicks and conversions (chapter 08): ESMM, MMoE and PLE over any ctrkit encoder.

The funnel is impression → click → conversion. Every model here predicts, per
impression, ``pCTR`` and the post-click ``pCVR`` with one tower each, and
trains them the way ESMM (Ma et al. 2018) does, on the entire impression
space: ``pCTCVR = pCTR × pCVR`` is fitted to the impression's conversion label
and ``pCTR`` to its click label, so ``pCVR`` never sees the click-only sample
and its selection bias. The loss is on the probability ``pCTR × pCVR``,
computed stably as the logit of a product (:func:`product_logit`), so the
trainer's BCE-with-logits applies unchanged.

What the tasks share is the structure:

- ``esmm``: a shared encoder, then one MLP tower per task (the ESMM paper's model);
- ``mmoe`` (Ma et al. 2018, "Modeling Task Relationships…"): ``n_experts``
  shared expert MLPs, mixed for each task by its own softmax gate;
- ``ple`` (Tang et al. 2020): ``n_levels`` extraction layers, each with shared
  experts and ``n_specific`` experts per task; a task's gate mixes its own
  experts and the shared ones, and a shared gate mixes all of them for the
  next level.

One :class:`ExtractionLayer` is MMoE (no task-specific experts, one level) and
each level of PLE. ``encoder="transformer"`` reads chapter 04's Transformer
(:meth:`CTRTransformer.represent`); ``encoder="embedding"`` the flattened field
embeddings. ``task_weighting="uncertainty"`` learns one log-variance per task
(Kendall et al. 2018) instead of fixed weights.

``forward`` returns one logit per label the model trains on, ``(B, 2)`` for
``labels: [click, conversion]``: the click logit and the logit of ``pCTCVR``.
:meth:`MultiTaskModel.task_logits` returns the three outputs a
:class:`~ctrkit.Predictor` serves, ``(B, 3)`` in :data:`OUTPUTS` order.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ctrkit._config import ConfigError
from ctrkit.models.attention import CTRTransformer
from ctrkit.models.layers import MLP, CTRModel, FeatureEmbedding
from ctrkit.preprocessing.loader import CTRTensors
from ctrkit.preprocessing.spec import FeatureSpec

CLICK, CONVERSION = "click", "conversion"
LABELS = (CLICK, CONVERSION)  # the label columns a multi-task model trains on, in its logits' order
# The outputs a Predictor serves: name -> (the label column it predicts, the rows it is defined on: where that
# column is 1, or None for every impression). p_conversion is post-click: it is defined on clicked impressions.
OUTPUTS = {CLICK: (CLICK, None), CONVERSION: (CONVERSION, CLICK), "ctcvr": (CONVERSION, None)}
ENCODERS = ("transformer", "embedding")
_LN2 = math.log(2.0)


def clicked_only(t: CTRTensors) -> CTRTensors:
    """The clicked rows of [click, conversion] tensors with the conversion label alone: what a plain CVR model
    trains on (chapter 08's click-only baseline, biased where it is served: on every impression)."""
    rows = t.y[:, LABELS.index(CLICK)] == 1
    return CTRTensors(t.x_dense[rows], t.x_sparse[rows], t.y[rows, LABELS.index(CONVERSION)])


def log1mexp(a: torch.Tensor) -> torch.Tensor:
    """``log(1 - exp(a))`` for ``a < 0``, stable on both sides of ``-log 2`` (Mächler 2012)."""
    a = a.clamp(max=-1e-7)
    return torch.where(a > -_LN2, torch.log(-torch.expm1(a)), torch.log1p(-torch.exp(a)))


def product_logit(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """The logit of ``sigmoid(z1) · sigmoid(z2)``, without forming the product: ``log p - log(1 - p)``."""
    log_p = F.logsigmoid(z1.float()) + F.logsigmoid(z2.float())
    return log_p - log1mexp(log_p)


class ExtractionLayer(nn.Module):
    """Experts and gates: ``n_shared`` shared experts, ``n_specific`` experts per task, one softmax gate per task.

    Task ``k``'s gate reads task ``k``'s input and mixes its own experts with the
    shared ones; with ``shared_output`` a shared gate reads the shared input and
    mixes every expert, the shared input of the next level (PLE's progressive
    layers). ``n_specific=0`` and one level is MMoE.
    """

    def __init__(self, d_in: int, n_tasks: int, n_shared: int, n_specific: int, hidden: tuple[int, ...],
                 dropout: float = 0.0, shared_output: bool = False):
        super().__init__()
        if n_shared + n_specific < 1 or not hidden:
            raise ConfigError("an extraction layer needs at least one expert, and experts need hidden sizes")
        self.n_tasks, self.n_shared, self.n_specific = n_tasks, n_shared, n_specific
        self.shared = nn.ModuleList(MLP(d_in, hidden, dropout) for _ in range(n_shared))
        self.specific = nn.ModuleList(MLP(d_in, hidden, dropout) for _ in range(n_tasks * n_specific))
        self.gates = nn.ModuleList(nn.Linear(d_in, n_specific + n_shared) for _ in range(n_tasks))
        self.shared_gate = nn.Linear(d_in, n_tasks * n_specific + n_shared) if shared_output else None
        self.out_features = hidden[-1]

    def forward(self, task_inputs: list[torch.Tensor], shared_input: torch.Tensor):
        """Per-task inputs and the shared input, each (B, d_in) → per-task outputs, the shared output (or None),
        and each gate's weights (B, experts it mixes), task gates first."""
        shared = [e(shared_input) for e in self.shared]
        own = [[self.specific[k * self.n_specific + j](task_inputs[k]) for j in range(self.n_specific)]
               for k in range(self.n_tasks)]
        outputs, weights = [], []
        for k, gate in enumerate(self.gates):
            w = torch.softmax(gate(task_inputs[k]), dim=-1)  # (B, n_specific + n_shared)
            outputs.append(torch.einsum("be,bed->bd", w, torch.stack(own[k] + shared, dim=1)))
            weights.append(w)
        shared_out = None
        if self.shared_gate is not None:
            w = torch.softmax(self.shared_gate(shared_input), dim=-1)
            experts = torch.stack([e for task in own for e in task] + shared, dim=1)
            shared_out = torch.einsum("be,bed->bd", w, experts)
            weights.append(w)
        return outputs, shared_out, weights


class MultiTaskModel(CTRModel):
    """pCTR and post-click pCVR over a shared encoder, trained on the entire impression space (see the module)."""

    structure = "esmm"

    def __init__(self, spec: FeatureSpec, encoder: str = "transformer", embed_dim: int = 16, l2: float = 1.0,
                 tower: tuple[int, ...] = (64,), dropout: float = 0.0, n_experts: int = 4, n_specific: int = 1,
                 n_levels: int = 2, expert_hidden: tuple[int, ...] = (64,), task_weighting: str = "fixed"):
        super().__init__()
        if encoder not in ENCODERS:
            raise ConfigError(f"encoder must be one of {', '.join(ENCODERS)}, got {encoder!r}")
        if task_weighting not in ("fixed", "uncertainty"):
            raise ConfigError(f"task_weighting must be 'fixed' or 'uncertainty', got {task_weighting!r}")
        if encoder == "transformer":  # chapter 04's default Transformer without its head (it holds the embeddings)
            self.encoder = CTRTransformer(spec, embed_dim, l2=l2, n_outputs=0)
            d = self.encoder.out_features
        else:
            self.encoder, self.embedding = None, FeatureEmbedding(spec, embed_dim, l2=l2)
            d = self.embedding.out_features
        n_tasks = 2
        if self.structure == "esmm":
            self.levels = nn.ModuleList()
        elif self.structure == "mmoe":
            self.levels = nn.ModuleList([ExtractionLayer(d, n_tasks, n_experts, 0, tuple(expert_hidden), dropout)])
        else:  # ple
            if n_levels < 1:
                raise ConfigError(f"ple needs n_levels >= 1, got {n_levels}")
            self.levels = nn.ModuleList(
                ExtractionLayer(d if i == 0 else expert_hidden[-1], n_tasks, n_experts, n_specific,
                                tuple(expert_hidden), dropout, shared_output=i < n_levels - 1)
                for i in range(n_levels))
        d_tower = self.levels[-1].out_features if len(self.levels) else d
        self.towers = nn.ModuleList(MLP(d_tower, tuple(tower), dropout) for _ in range(n_tasks))
        self.outs = nn.ModuleList(nn.Linear(t.out_features, 1) for t in self.towers)
        # uncertainty weighting: one learned log-variance per task, read by ctrkit.training.ctr_loss (0: weight 1)
        self.log_vars = nn.Parameter(torch.zeros(n_tasks)) if task_weighting == "uncertainty" else None

    def embed(self, x_dense, x_sparse):
        if self.encoder is not None:
            return self.encoder.embed(x_dense, x_sparse)
        return (self.embedding(x_dense, x_sparse),)  # (B, F, D)

    def _tasks(self, tokens, return_gates: bool = False):
        """(click logit, post-click conversion logit), each (B,), and the gates' weights per level."""
        h = self.encoder.represent(tokens)[0] if self.encoder is not None else tokens[0].flatten(1)
        inputs, shared, gates = [h, h], h, []
        for level in self.levels:
            inputs, shared, weights = level(inputs, shared)
            gates.append(weights)
        z_ctr, z_cvr = (out(tower(x)).squeeze(-1) for tower, out, x in zip(self.towers, self.outs, inputs))
        return (z_ctr, z_cvr, gates) if return_gates else (z_ctr, z_cvr)

    def head(self, tokens, return_attn: bool = False):
        """Logits for the labels it trains on, (B, 2): click, and the impression's conversion (pCTR · pCVR)."""
        z_ctr, z_cvr = self._tasks(tokens)
        logits = torch.stack([z_ctr.float(), product_logit(z_ctr, z_cvr)], dim=1)
        return (logits, []) if return_attn else logits

    def task_logits(self, x_dense, x_sparse) -> torch.Tensor:
        """(B, 3) logits in :data:`OUTPUTS` order: click, post-click conversion, click-and-conversion."""
        z_ctr, z_cvr = self._tasks(self.embed(x_dense, x_sparse))
        return torch.stack([z_ctr.float(), z_cvr.float(), product_logit(z_ctr, z_cvr)], dim=1)

    def gate_weights(self, x_dense, x_sparse) -> list[list[torch.Tensor]]:
        """Each level's gate weights, (B, experts) per gate: the task gates (click, conversion), then PLE's shared one."""
        return self._tasks(self.embed(x_dense, x_sparse), return_gates=True)[2]


class ESMM(MultiTaskModel):
    """ESMM (Ma et al. 2018): a shared encoder, a CTR tower and a CVR tower; pCTCVR = pCTR × pCVR."""

    structure = "esmm"

    def __init__(self, spec: FeatureSpec, encoder: str = "transformer", embed_dim: int = 16, l2: float = 1.0,
                 tower: tuple[int, ...] = (64,), dropout: float = 0.0, task_weighting: str = "fixed"):
        super().__init__(spec, encoder, embed_dim, l2, tower, dropout, task_weighting=task_weighting)


class MMoE(MultiTaskModel):
    """MMoE: ``n_experts`` shared experts, one softmax gate per task, then the towers; trained the ESMM way."""

    structure = "mmoe"

    def __init__(self, spec: FeatureSpec, encoder: str = "transformer", embed_dim: int = 16, l2: float = 1.0,
                 tower: tuple[int, ...] = (64,), dropout: float = 0.0, n_experts: int = 4,
                 expert_hidden: tuple[int, ...] = (64,), task_weighting: str = "fixed"):
        super().__init__(spec, encoder, embed_dim, l2, tower, dropout, n_experts, 0, 1, expert_hidden, task_weighting)


class PLE(MultiTaskModel):
    """PLE: ``n_levels`` extraction layers of shared and task-specific experts; trained the ESMM way."""

    structure = "ple"

    def __init__(self, spec: FeatureSpec, encoder: str = "transformer", embed_dim: int = 16, l2: float = 1.0,
                 tower: tuple[int, ...] = (64,), dropout: float = 0.0, n_experts: int = 2, n_specific: int = 1,
                 n_levels: int = 2, expert_hidden: tuple[int, ...] = (64,), task_weighting: str = "fixed"):
        super().__init__(spec, encoder, embed_dim, l2, tower, dropout, n_experts, n_specific, n_levels,
                         expert_hidden, task_weighting)
