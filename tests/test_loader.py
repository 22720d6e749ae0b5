import numpy as np
import torch

from ctrkit.preprocessing import BatchLoader, CTRPreprocessor, CTRTensors


def _tensors(df, labels=("click",)):
    pre = CTRPreprocessor().fit(df)
    return CTRTensors.from_frame(pre.transform(df), pre.spec, labels)


def test_from_frame(small_df):
    t = _tensors(small_df)
    assert t.x_dense.dtype == torch.float32 and t.x_dense.shape == (5_000, 26)
    assert t.x_sparse.dtype == torch.int64 and t.x_sparse.shape == (5_000, 26)
    assert t.y.shape == (5_000,) and torch.equal(t.y, torch.from_numpy(small_df["click"].to_numpy(np.float32)))
    assert _tensors(small_df, ("click", "conversion")).y.shape == (5_000, 2)
    assert _tensors(small_df.drop(columns=["click", "conversion"])).y is None


def test_batches_cover_every_row_once(small_df):
    t = _tensors(small_df)
    t.x_dense[:, 0] = torch.arange(len(t), dtype=torch.float32)  # tag rows to follow them
    loader = BatchLoader(t, batch_size=512, shuffle=True, seed=3)
    assert len(loader) == 10
    seen = torch.cat([xd[:, 0] for xd, xs, y in loader])
    assert torch.equal(seen.sort().values, torch.arange(len(t), dtype=torch.float32))
    assert not torch.equal(seen, torch.arange(len(t), dtype=torch.float32))


def test_shuffles_are_reproducible_and_change_per_epoch(small_df):
    t = _tensors(small_df)
    first = [y for _, _, y in BatchLoader(t, 1000, shuffle=True, seed=1)]
    again = [y for _, _, y in BatchLoader(t, 1000, shuffle=True, seed=1)]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    loader = BatchLoader(t, 1000, shuffle=True, seed=1)
    epoch1, epoch2 = [torch.cat([xs for _, xs, _ in loader]) for _ in range(2)]
    assert not torch.equal(epoch1, epoch2)


def test_drop_last_and_order(small_df):
    t = _tensors(small_df)
    batches = list(BatchLoader(t, 2048, drop_last=True))
    assert len(batches) == 2 and all(xs.shape[0] == 2048 for _, xs, _ in batches)
    xs = torch.cat([b[1] for b in BatchLoader(t, 2048)])
    assert torch.equal(xs, t.x_sparse)
