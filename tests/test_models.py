"""ctrkit.models: one interface for every model, the shared embedding layer, attention maps."""

import pytest
import torch
import torch.nn.functional as F

from ctrkit.models import MODELS, MULTITASK, FeatureEmbedding, SparseEmbedding, attention, build, embedding_penalty, set_frequencies
from ctrkit.models.attention import CPU_ROWS
from ctrkit.preprocessing import CTRPreprocessor, CTRTensors


@pytest.fixture(scope="module")
def data(small_df):
    pre = CTRPreprocessor().fit(small_df)
    return pre.spec, CTRTensors.from_frame(pre.transform(small_df), pre.spec)


SINGLE_LABEL = [name for name in MODELS if name not in MULTITASK]  # tests/test_multitask.py has the others


@pytest.mark.parametrize("name", SINGLE_LABEL)
def test_forward_backward(data, name):
    spec, t = data
    torch.manual_seed(0)
    model = build(name, spec)
    logits = model(t.x_dense[:64], t.x_sparse[:64])
    assert logits.shape == (64,) and torch.isfinite(logits).all()
    F.binary_cross_entropy_with_logits(logits, t.y[:64]).backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None for g in grads), "every parameter takes part in the logit"
    assert any(g.abs().sum() > 0 for g in grads)
    model.eval()  # no dropout: both paths must give the same logits
    with_maps, maps = model(t.x_dense[:64], t.x_sparse[:64], return_attn=True)
    torch.testing.assert_close(with_maps, model(t.x_dense[:64], t.x_sparse[:64]), atol=1e-5, rtol=1e-5)
    assert len(maps) == {"autoint": 3, "transformer": 1}.get(name, 0)


@pytest.mark.parametrize("name", SINGLE_LABEL)
def test_tiny_overfit(data, name):
    """Any model can memorise 256 rows: the training loss falls far below the base-rate entropy."""
    spec, t = data
    torch.manual_seed(0)
    model = build(name, spec)
    x_dense, x_sparse, y = t.x_dense[:256], t.x_sparse[:256], t.y[:256]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        loss = F.binary_cross_entropy_with_logits(model(x_dense, x_sparse), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    final = F.binary_cross_entropy_with_logits(model(x_dense, x_sparse), y).item()
    assert final < 0.15, f"{name} did not fit 256 rows: loss {final:.3f}"


@pytest.mark.parametrize("name", ["autoint", "transformer"])
def test_attention_maps(data, name):
    spec, t = data
    torch.manual_seed(0)
    model = build(name, spec).eval()
    fused = model(t.x_dense[:32], t.x_sparse[:32])
    logits, maps = model(t.x_dense[:32], t.x_sparse[:32], return_attn=True)
    torch.testing.assert_close(logits, fused, atol=1e-5, rtol=1e-5)
    tokens = spec.n_fields + (name == "transformer")  # 39 fields (+ [CLS])
    heads = {"autoint": 2, "transformer": 1}[name]
    for w in maps:
        assert w.shape == (32, heads, tokens, tokens)
        torch.testing.assert_close(w.sum(-1), torch.ones(32, heads, tokens))
        assert (w >= 0).all()


def test_cpu_attention_in_slices_matches_the_fused_kernel_and_the_whole_batch():
    """The CPU's explicit path, CPU_ROWS rows at a time, gives the fused kernel's outputs and the unsliced gradients."""
    q, k, v = (x.requires_grad_() for x in torch.randn(3, CPU_ROWS * 2 + 5, 2, 7, 8).unbind(0))
    out, none = attention(q, k, v)
    assert none is None
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v), atol=1e-5, rtol=1e-5)
    explicit, w = attention(q, k, v, return_attn=True)
    assert w.shape == (CPU_ROWS * 2 + 5, 2, 7, 7)
    torch.testing.assert_close(explicit, w @ v)
    whole = torch.softmax(q @ k.transpose(-2, -1) / 8**0.5, dim=-1) @ v  # one slice: the whole batch at once
    for g, g_whole in zip(torch.autograd.grad(out.square().sum(), (q, k, v)),
                          torch.autograd.grad(whole.square().sum(), (q, k, v))):
        torch.testing.assert_close(g, g_whole, atol=1e-5, rtol=1e-5)


def test_cpu_bf16_attention_matches_fp32_with_gradients():
    """Under CPU bf16 autocast (the explicit path) outputs and gradients stay within bf16 precision of fp32's."""
    q, k, v = (x.requires_grad_() for x in torch.randn(3, 64, 2, 39, 8).unbind(0))
    reference, _ = attention(q, k, v)
    grads = torch.autograd.grad(reference.square().sum(), (q, k, v))
    with torch.autocast("cpu", torch.bfloat16):
        out, none = attention(*(x.bfloat16() for x in (q, k, v)))
    assert none is None and out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), reference, atol=0.03, rtol=0.03)
    for g, g_bf16 in zip(grads, torch.autograd.grad(out.float().square().sum(), (q, k, v))):
        assert torch.nn.functional.cosine_similarity(g.flatten(), g_bf16.flatten(), dim=0) > 0.99


def test_build_rejects_bad_names_and_types(data):
    spec, _ = data
    with pytest.raises(ValueError, match="unknown model 'gbdt'"):
        build("gbdt", spec)
    with pytest.raises(ValueError, match="no setting 'depth'"):
        build("deepfm", spec, depth=3)
    with pytest.raises(ValueError, match="'embed_dim' must be an integer"):
        build("transformer", spec, embed_dim="16")
    with pytest.raises(ValueError, match="'hidden' must be a list"):
        build("dcnv2", spec, hidden=128)
    assert build("dcnv2", spec, hidden=[32], rank=4).mlp.out_features == 32


def test_embedding_options(data):
    spec, t = data
    emb = SparseEmbedding(spec, dim=8, shared={"C14": "C6"})
    i6, i14 = emb.names.index("C6"), emb.names.index("C14")
    size = max(s.vocab_size for s in spec.sparse if s.name in ("C6", "C14"))
    assert emb.offsets[i6] == emb.offsets[i14] and emb.rows("C14").shape == (size, 8)
    assert emb.table.num_embeddings == sum(s.vocab_size for s in spec.sparse if s.name not in ("C6", "C14")) + size
    with pytest.raises(ValueError, match="both must be categorical"):
        SparseEmbedding(spec, shared={"I1": "C6"})
    tokens = FeatureEmbedding(spec, dim=8)(t.x_dense[:4], t.x_sparse[:4])
    assert tokens.shape == (4, spec.n_fields, 8)


def test_embedding_l2_penalty_and_dropout(data):
    spec, t = data
    emb = SparseEmbedding(spec, dim=4, l2=0.5)
    with pytest.raises(RuntimeError, match="set_frequencies"):  # a penalty without frequencies says why
        embedding_penalty(torch.nn.Sequential(emb), t.x_sparse[:16])
    set_frequencies(torch.nn.Sequential(emb), t.x_sparse)
    expected = 0.0  # every distinct row of the batch once, divided by its count in the training ids
    for i, name in enumerate(emb.names):
        table, ids = emb.rows(name), t.x_sparse[:, i]
        for j in torch.unique(ids[:16]).tolist():
            expected += table[j].pow(2).sum() / (ids == j).sum()
    torch.testing.assert_close(embedding_penalty(torch.nn.Sequential(emb), t.x_sparse[:16]), 0.5 * expected)
    counts = torch.bincount(t.x_sparse[:, 0], minlength=len(emb.rows("C1"))).float()
    torch.testing.assert_close(emb.frequency[:len(counts)], counts.clamp(min=1.0))  # C1's block; unseen rows count 1
    assert not any("frequency" in k for k in emb.state_dict()), "counts come from the data, not the weights file"
    assert embedding_penalty(SparseEmbedding(spec, dim=4), t.x_sparse[:16]) == 0.0  # no l2, no penalty
    drop = SparseEmbedding(spec, dim=4, dropout=0.5)
    torch.manual_seed(0)
    out = drop(t.x_sparse[:2000])  # (B, F, D)
    zero_rows = (out.abs().sum(-1) == 0).float().mean().item()
    assert 0.45 < zero_rows < 0.55, "whole field vectors are dropped"


@pytest.mark.parametrize("kind", ["linear", "periodic", "pwl"])
def test_numeric_embeddings(data, kind):
    spec, t = data
    model = build("transformer", spec, numeric=kind)
    tokens = model.embedding.dense(t.x_dense[:8])
    assert tokens.shape == (8, 13, 16) and torch.isfinite(tokens).all()
    x = t.x_dense[:8].clone()
    flag = spec.dense_index("I1", "missing")
    x[:, flag] = 1 - x[:, flag]
    changed = (model.embedding.dense(x) - tokens).abs().sum(-1)  # (B, F_n)
    with torch.no_grad():
        model.embedding.dense.missing.fill_(1.0)
        changed = (model.embedding.dense(x) - model.embedding.dense(t.x_dense[:8])).abs().sum(-1)
    assert (changed[:, 0] > 0).all() and (changed[:, 1:] == 0).all(), "the missing flag moves only its own field"


OLD_TRANSFORMER = {"n_layers": 2, "n_heads": 2, "ffn_mult": 2.0, "field_proj": False, "cross": 0}  # ctrkit 0.1's


@pytest.mark.parametrize("options", [
    {}, OLD_TRANSFORMER, {"d_model": 32}, {"cross_rank": 8}, {"deep": (32,)}, {"n_layers": 2, "ffn_mult": 1.0},
    {"pooling": "concat", "cross": 1}, {"pooling": "mean", "n_heads": 2, "field_proj": False},
])
def test_transformer_options(data, options):
    """Each of chapter 04's levers: every parameter learns, the attention maps stay field x field, the
    [CLS]-only last block gives the full block's logits, and per-field projections are one weight per token."""
    spec, t = data
    torch.manual_seed(0)
    model = build("transformer", spec, **options)
    logits = model(t.x_dense[:32], t.x_sparse[:32])
    F.binary_cross_entropy_with_logits(logits, t.y[:32]).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    model.eval()
    with_maps, maps = model(t.x_dense[:32], t.x_sparse[:32], return_attn=True)
    torch.testing.assert_close(with_maps, model(t.x_dense[:32], t.x_sparse[:32]), atol=1e-5, rtol=1e-5)
    assert maps[0].shape == (32, model.blocks[0].attn.n_heads, spec.n_fields + 1, spec.n_fields + 1)
    with torch.no_grad():  # the [CLS]-only path of a block against its every-query path
        x = torch.cat([model.cls.expand(32, -1, -1), model.embed(t.x_dense[:32], t.x_sparse[:32])[0] + model.field], 1)
        x = model.widen(x) if model.widen is not None else x
        full, only = model.blocks[0](x)[0], model.blocks[0](x, n_queries=1)[0]
    assert only.shape == (32, 1, x.shape[-1])
    torch.testing.assert_close(only[:, 0], full[:, 0], atol=1e-5, rtol=1e-5)
    if options.get("field_proj", True):
        assert model.blocks[0].attn.qkv.weight.shape[0] == spec.n_fields + 1
    if options.get("cross_rank"):
        assert sum(p.numel() for p in model.cross.parameters()) < sum(
            p.numel() for p in build("transformer", spec).cross.parameters()) / 10


def test_one_fused_table_looks_up_every_field(data):
    """The fused table gives each field its own block: a lookup equals indexing that field's rows."""
    spec, t = data
    emb = SparseEmbedding(spec, dim=4)
    out = emb(t.x_sparse[:16])
    for i, name in enumerate(emb.names):
        torch.testing.assert_close(out[:, i], emb.rows(name)[t.x_sparse[:16, i]])
    assert emb.table.num_embeddings == sum(s.vocab_size for s in spec.sparse)


def test_the_cpu_lookup_gives_nn_embeddings_gradient_bit_for_bit(data):
    """SparseEmbedding's CPU backward (index_add_) equals nn.Embedding's, repeated ids included."""
    spec, t = data
    emb = SparseEmbedding(spec, dim=4)
    plain = torch.nn.Embedding.from_pretrained(emb.table.weight.detach().clone(), freeze=False)
    ids = t.x_sparse[:300]
    grad = torch.randn(300, ids.shape[1], 4)
    emb(ids).backward(grad)
    plain(ids + emb.offsets).backward(grad)
    assert torch.equal(emb.table.weight.grad, plain.weight.grad) and emb.table.weight.grad.abs().sum() > 0


def test_autoint_layers_in_cpu_slices_equal_the_whole_batch(data):
    """AutoInt runs its layers CPU_ROWS rows at a time on the CPU: the whole batch's outputs, maps and gradients."""
    spec, t = data
    torch.manual_seed(0)
    model = build("autoint", spec, n_layers=2)
    n = CPU_ROWS * 2 + 5
    e = model.embed(t.x_dense[:n], t.x_sparse[:n])[0].detach().requires_grad_()
    sliced, maps = model.interact(e, return_attn=True)
    whole, whole_maps = model._interact(e, True)
    assert len(maps) == 2 and all(torch.equal(w, w0) for w, w0 in zip(maps, whole_maps))
    assert torch.equal(sliced, whole) and model.interact(e)[1] == [None, None]
    g, g_whole = (torch.autograd.grad(x.square().sum(), e) for x in (sliced, whole))
    assert torch.equal(g[0], g_whole[0])


def test_lightgbm_reference_trains_on_the_preprocessed_frame(small_df):
    from ctrkit import metrics
    from ctrkit.datasets import split
    from ctrkit.models.gbdt import fit_lightgbm, lightgbm_columns, predict_lightgbm
    from ctrkit.preprocessing import CTRPreprocessor

    train, val, test = split(small_df, seed=0)
    pre = CTRPreprocessor().fit(train)
    columns, categorical = lightgbm_columns(pre.spec)
    assert len(columns) == len(pre.spec.dense_names) + 26 and categorical == [s.name for s in pre.spec.sparse]
    model = fit_lightgbm(pre.transform(train), pre.transform(val), pre.spec, n_estimators=400, learning_rate=0.3)
    assert model.best_iteration_ < 400  # early stopping on the validation logloss
    p = predict_lightgbm(model, pre.transform(test), pre.spec)
    assert p.shape == (len(test),) and ((p > 0) & (p < 1)).all()
    assert metrics.auc(test["click"], p) > 0.55  # 515 test rows: about 3.5 standard errors above chance
