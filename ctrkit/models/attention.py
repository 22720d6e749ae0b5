"""Self-attention over fields (chapter 04): AutoInt and ctrkit's [CLS]-token Transformer with a cross network.

- AutoInt (Song et al. 2019): each field's vector attends to every other field's;
  "interacting layers" with a residual projection and ReLU; the final field
  vectors are concatenated into a logistic layer (AutoInt+ adds an MLP in parallel).
- :class:`CTRTransformer`: the FT-Transformer recipe (Gorishniy et al. 2021) for
  CTR fields: every field a token, a learned field embedding, a [CLS] token,
  pre-norm blocks (attention, then a feed-forward network), a head on [CLS].

Both compute attention with :func:`attention`: on a GPU the fused
``scaled_dot_product_attention`` kernel, on the CPU the explicit softmax over
a few hundred rows of the batch at a time, so that each slice's (rows, H, T, T)
weights stay in the cache between the matrix multiplies and the softmax that
read them; only an fp32 [CLS] readout (one query a row, small weights) keeps
the fused kernel on the CPU. AutoInt goes further on the CPU: all its
interacting layers run on one slice of rows before the next slice starts.
``benchmarks/attention.py`` measures the paths.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ctrkit._config import ConfigError
from ctrkit.models.classic import CrossLayer
from ctrkit.models.layers import MLP, CTRModel, FeatureEmbedding
from ctrkit.preprocessing.spec import FeatureSpec


CPU_ROWS = 256  # rows of a batch the CPU attends over at once: (256, H, T, T) weights fit in its cache


def attention(q, k, v, dropout: float = 0.0, return_attn: bool = False):
    """softmax(q kᵀ / √d) v for (B, H, Tq, d) queries and (B, H, T, d) keys and values; returns (out, weights or None).

    The fused kernel on a GPU, and on the CPU for an fp32 [CLS] readout (one query a row, whose weights are small).
    Otherwise, and whenever the weights are wanted (``return_attn``, chapter 07), the explicit softmax; on the CPU
    over ``CPU_ROWS`` rows at a time, with the same numbers in any slicing. With every token querying, a batch's
    weights are large (50 MB at AutoInt's 4096 rows x 2 heads x 39 x 39), read and written a dozen times in a
    forward and backward pass; slices stay in the cache. ``benchmarks/attention.py`` on two threads (AVX2, fp32,
    forward + backward): at AutoInt's shape 77 ms in slices, 123 ms explicit over the whole batch, 177 ms fused; for
    one query a row (B=4096, T=40, d=16) 6.8 ms explicit and 7.6 ms fused, close enough to keep the fused kernel.
    Under CPU bf16 the explicit path runs: on a CPU with AVX-512 BF16 the fused kernel's bf16 backward was slower
    than its fp32 one (chapter 05).
    """
    cpu = q.device.type == "cpu"
    if not return_attn and (not cpu or (q.shape[-2] == 1 and q.dtype == torch.float32)):
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout), None
    if not cpu or len(q) <= CPU_ROWS:  # one slice: no split, whose backward would copy each gradient
        return _explicit(q, k, v, dropout, return_attn)
    parts = [_explicit(*part, dropout, return_attn) for part in zip(*(t.split(CPU_ROWS) for t in (q, k, v)))]
    return torch.cat([y for y, _ in parts]), (torch.cat([w for _, w in parts]) if return_attn else None)


def _explicit(q, k, v, dropout: float, return_attn: bool):
    weights = torch.softmax(q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5, dim=-1)  # (B, H, Tq, T)
    return F.dropout(weights, dropout, training=dropout > 0) @ v, (weights if return_attn else None)


class FieldLinear(nn.Module):
    """A separate linear map per token position: (B, T, d_in) → (B, T, d_out) with a [T, d_in, d_out] weight.

    Heterogeneous fields (a user id, an hour, a count) need not share one
    query/key/value projection (Hiformer, Gui et al. 2023).
    """

    def __init__(self, n_tokens: int, d_in: int, d_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_tokens, d_in, d_out) / d_in**0.5)
        self.bias = nn.Parameter(torch.zeros(n_tokens, d_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # contiguous: einsum may hand back a permuted layout, which the caller's view() and inductor's
        # dynamic-shape kernels (a smaller last batch) do not expect
        return (torch.einsum("btd,tde->bte", x, self.weight) + self.bias).contiguous()  # (B, T, d_out)


class MultiHeadSelfAttention(nn.Module):
    """Multi-head self-attention; ``n_tokens`` gives every token position its own Q/K/V projection."""

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, d_head: int | None = None,
                 n_tokens: int | None = None):
        super().__init__()
        if d_head is None and d_model % n_heads:
            raise ConfigError(f"d_model {d_model} is not divisible by n_heads {n_heads}")
        d_head = d_head or d_model // n_heads
        self.n_heads, self.d_head, self.dropout = n_heads, d_head, dropout
        self.qkv = (nn.Linear(d_model, 3 * n_heads * d_head) if n_tokens is None
                    else FieldLinear(n_tokens, d_model, 3 * n_heads * d_head))
        self.out = nn.Linear(n_heads * d_head, d_model)

    def forward(self, x: torch.Tensor, return_attn: bool = False, n_queries: int | None = None):
        """(B, T, D) → (B, T, D); ``n_queries`` keeps only the first tokens' outputs (B, n_queries, D)."""
        B, T, _ = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_heads, self.d_head).permute(2, 0, 3, 1, 4)  # 3 x (B, H, T, d)
        q = q if n_queries is None else q[:, :, :n_queries]  # (B, H, Tq, d)
        y, weights = attention(q, k, v, self.dropout if self.training else 0.0, return_attn)
        return self.out(y.transpose(1, 2).reshape(B, q.shape[2], -1)), weights  # (B, Tq, D)


class AutoInt(CTRModel):
    """AutoInt: interacting layers over field tokens; ``hidden`` adds AutoInt+'s parallel MLP."""

    def __init__(self, spec: FeatureSpec, embed_dim: int = 16, n_layers: int = 3, n_heads: int = 2,
                 d_head: int = 8, hidden: tuple[int, ...] = (), dropout: float = 0.1, attn_dropout: float = 0.0,
                 embed_dropout: float = 0.0, l2: float = 0.0):
        super().__init__()
        self.embedding = FeatureEmbedding(spec, embed_dim, dropout=embed_dropout, l2=l2)
        d_in = embed_dim
        self.layers = nn.ModuleList()
        self.residual = nn.ModuleList()
        for _ in range(n_layers):
            self.layers.append(MultiHeadSelfAttention(d_in, n_heads, attn_dropout, d_head))
            self.layers[-1].out = nn.Identity()  # AutoInt concatenates the heads without an output projection
            self.residual.append(nn.Linear(d_in, n_heads * d_head, bias=False))
            d_in = n_heads * d_head
        n_fields = self.embedding.n_fields
        self.mlp = MLP(n_fields * embed_dim, tuple(hidden), dropout) if hidden else None
        self.out = nn.Linear(n_fields * d_in + (self.mlp.out_features if self.mlp else 0), 1)

    def embed(self, x_dense, x_sparse):
        return (self.embedding(x_dense, x_sparse),)  # (B, F, D)

    def head(self, tokens, return_attn: bool = False):
        e = tokens[0]  # (B, F, D)
        x, maps = self.interact(e, return_attn)  # (B, F, H*d)
        h = x.flatten(1) if self.mlp is None else torch.cat([x.flatten(1), self.mlp(e.flatten(1))], dim=1)
        logits = self.out(h).squeeze(-1)  # (B,)
        return (logits, maps) if return_attn else logits

    def interact(self, e: torch.Tensor, return_attn: bool = False) -> tuple[torch.Tensor, list]:
        """The interacting layers: field tokens (B, F, D) → (B, F, H*d), and each layer's (B, H, F, F) map.

        On the CPU all the layers run on ``CPU_ROWS`` rows before the next rows start, so that a slice's
        projections, weights and their gradients stay in the cache from one layer to the next: the same numbers
        as the whole batch at once, forward + backward 1.11-1.16x as fast (two runs of ``benchmarks/attention.py``).
        """
        if e.device.type != "cpu" or len(e) <= CPU_ROWS:
            return self._interact(e, return_attn)
        parts = [self._interact(p, return_attn) for p in e.split(CPU_ROWS)]
        maps = [torch.cat(w) if return_attn else None for w in zip(*(m for _, m in parts))]
        return torch.cat([x for x, _ in parts]), maps

    def _interact(self, e: torch.Tensor, return_attn: bool) -> tuple[torch.Tensor, list]:
        x, maps = e, []
        for attn, res in zip(self.layers, self.residual):
            y, w = attn(x, return_attn)
            x = F.relu(y + res(x))  # (B, F, H*d)
            maps.append(w)
        return x, maps


class Block(nn.Module):
    """Pre-norm Transformer block: x + attn(LN(x)), then x + FFN(LN(x)); ``ffn_mult=0`` leaves the FFN out."""

    def __init__(self, d_model: int, n_heads: int, ffn_mult: float, dropout: float, attn_dropout: float,
                 n_tokens: int | None = None):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = MultiHeadSelfAttention(d_model, n_heads, attn_dropout, n_tokens=n_tokens)
        d_ffn = int(d_model * ffn_mult)
        self.norm2 = nn.LayerNorm(d_model) if d_ffn else None
        self.ffn = (nn.Sequential(nn.Linear(d_model, d_ffn), nn.GELU(), nn.Dropout(dropout), nn.Linear(d_ffn, d_model))
                    if d_ffn else None)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, return_attn: bool = False, n_queries: int | None = None):
        """(B, T, D) → (B, T, D), or only the first ``n_queries`` tokens' outputs (B, n_queries, D)."""
        y, weights = self.attn(self.norm1(x), return_attn, n_queries)
        x = (x if n_queries is None else x[:, :n_queries]) + self.drop(y)
        return (x if self.ffn is None else x + self.drop(self.ffn(self.norm2(x)))), weights  # (B, T or n_queries, D)


class CTRTransformer(CTRModel):
    """Fields as tokens, a [CLS] token, ``n_layers`` pre-norm blocks, a parallel cross network, an MLP head (chapter 04).

    ``pooling`` picks what the head reads of the tokens: "cls" (default), "mean"
    over field tokens, or "concat" of all field tokens. ``numeric`` is the
    numeric embedding ("linear", "periodic" or "pwl"). ``n_outputs`` > 1 gives
    one logit per label; ``n_outputs=0`` leaves the head's MLP and output layer
    out, and the model is an encoder: :meth:`represent` gives the
    ``out_features`` numbers a multi-task head reads (chapter 08). ``forward(..., return_attn=True)`` returns
    ``(logits, maps)`` with one (B, H, T, T) map per block; token 0 is [CLS],
    then the fields in spec order (numeric first).

    The defaults are what won chapter 04's ablation (``benchmarks/models.py
    --ablation``): one block with one head and no FFN, per-token Q/K/V
    projections (``field_proj``, Hiformer), and two full-rank DCNv2 cross layers
    (``cross``; low-rank with ``cross_rank``) over the flattened embeddings in
    parallel, their output joining the [CLS] token at the head. ``deep`` adds a
    parallel MLP, ``d_model`` widens the tokens before the blocks. With the
    [CLS] readout the last block computes only the [CLS] query (the maps keep
    every query).
    """

    def __init__(self, spec: FeatureSpec, embed_dim: int = 16, n_layers: int = 1, n_heads: int = 1,
                 ffn_mult: float = 0.0, hidden: tuple[int, ...] = (64,), dropout: float = 0.0,
                 attn_dropout: float = 0.0, embed_dropout: float = 0.0, numeric: str = "linear",
                 pooling: str = "cls", n_outputs: int = 1, l2: float = 0.0, d_model: int = 0,
                 field_proj: bool = True, cross: int = 2, cross_rank: int = 0, deep: tuple[int, ...] = ()):
        super().__init__()
        if pooling not in ("cls", "mean", "concat"):
            raise ConfigError(f"pooling must be 'cls', 'mean' or 'concat', got {pooling!r}")
        width = d_model or embed_dim
        if width % n_heads:
            raise ConfigError(f"the attention width {width} must be divisible by n_heads {n_heads}")
        self.pooling, self.n_outputs = pooling, n_outputs
        self.embedding = FeatureEmbedding(spec, embed_dim, numeric=numeric, dropout=embed_dropout, l2=l2)
        n_fields = self.embedding.n_fields
        self.field = nn.Parameter(torch.randn(n_fields, embed_dim) * 0.02)  # which field a token came from
        self.cls = nn.Parameter(torch.randn(1, 1, embed_dim) * 0.02)
        self.blocks = nn.ModuleList(Block(width, n_heads, ffn_mult, dropout, attn_dropout,
                                          n_fields + 1 if field_proj else None) for _ in range(n_layers))
        self.norm = nn.LayerNorm(width)
        self.widen = nn.Linear(embed_dim, width) if d_model else None
        d_flat = n_fields * embed_dim
        self.cross = nn.ModuleList(CrossLayer(d_flat, cross_rank or None) for _ in range(cross))
        self.deep = MLP(d_flat, tuple(deep), dropout) if deep else None
        d_pool = width * (n_fields if pooling == "concat" else 1)
        d_pool += (d_flat if cross else 0) + (self.deep.out_features if self.deep else 0)
        self.out_features = d_pool  # what represent() returns per row
        self.mlp = MLP(d_pool, tuple(hidden), dropout) if n_outputs else None
        self.out = nn.Linear(self.mlp.out_features, n_outputs) if n_outputs else None

    def embed(self, x_dense, x_sparse):
        return (self.embedding(x_dense, x_sparse),)  # (B, F, D)

    def head(self, tokens, return_attn: bool = False):
        if self.out is None:
            raise RuntimeError("a CTRTransformer built with n_outputs=0 is an encoder: call represent(tokens)")
        h, maps = self.represent(tokens, return_attn)
        logits = self.out(self.mlp(h))  # (B, n_outputs)
        logits = logits.squeeze(-1) if self.n_outputs == 1 else logits
        return (logits, maps) if return_attn else logits

    def represent(self, tokens, return_attn: bool = False) -> tuple[torch.Tensor, list]:
        """What the head reads, (B, out_features): the pooled tokens beside the cross network's output; and the maps."""
        e = tokens[0]  # (B, F, D)
        x = e + self.field  # each token learns which field it came from
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)  # (B, T=F+1, D)
        if self.widen is not None:
            x = self.widen(x)  # (B, T, d_model)
        maps = []
        for i, block in enumerate(self.blocks):
            # a [CLS] readout needs only token 0 of the last block (FT-Transformer's trick): its query alone; the
            # maps (return_attn) keep every query
            last_cls = self.pooling == "cls" and i == len(self.blocks) - 1 and not return_attn
            x, w = block(x, return_attn, 1 if last_cls else None)
            maps.append(w)
        x = self.norm(x)
        h = {"cls": lambda: x[:, 0], "mean": lambda: x[:, 1:].mean(1), "concat": lambda: x[:, 1:].flatten(1)}[self.pooling]()
        parts = [h]
        if len(self.cross):
            x0 = c = e.flatten(1)  # (B, F·D)
            for layer in self.cross:
                c = layer(x0, c)
            parts.append(c)
        if self.deep is not None:
            parts.append(self.deep(e.flatten(1)))
        return (torch.cat(parts, dim=1) if len(parts) > 1 else h), maps
