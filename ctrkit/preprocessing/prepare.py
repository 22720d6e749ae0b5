"""``ctrkit prepare``: data in, the prepared-data artifacts out (chapter 02).

    <out>/train_data.parquet, val_data.parquet, test_data.parquet
    <out>/preprocessor.json

A frame in memory (the synthetic twin) is split, the preprocessor is fitted on
the training part, and each part is transformed. A Criteo file is streamed in
two passes — fit on the training rows chunk by chunk, then transform and append
each chunk to the parquet files — so memory stays bounded however large the
file is. Files small enough are kept in memory between the passes.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm  # text bars: tqdm.auto would need ipywidgets in Jupyter

from ctrkit.datasets import SPLITS, DataError, iter_criteo_tables, split, split_codes
from ctrkit.preprocessing.loader import CTRTensors
from ctrkit._config import ConfigError
from ctrkit.preprocessing.preprocessor import CTRPreprocessor

PREPROCESSOR_FILE = "preprocessor.json"


def split_path(out: str | Path, name: str) -> Path:
    if name not in SPLITS:
        raise ValueError(f"unknown split {name!r}; use one of {', '.join(SPLITS)}")
    return Path(out) / f"{name}_data.parquet"


def prepare_frame(
    df: pd.DataFrame,
    out: str | Path,
    preprocessor: CTRPreprocessor | None = None,
    how: str = "random",
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
) -> dict[str, int]:
    """Split ``df``, fit the preprocessor on the training part, write all artifacts; rows per split."""
    pre = preprocessor or CTRPreprocessor()
    parts = dict(zip(SPLITS, split(df, how, fractions, seed)))
    pre.fit(parts["train"])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name, part in parts.items():
        pq.write_table(pre.transform_table(part), split_path(out, name), compression="zstd")
    pre.save(out / PREPROCESSOR_FILE)
    return {name: len(part) for name, part in parts.items()}


def _count_lines(path: Path) -> int:
    """Non-empty lines of a (possibly gzipped) text file, counted in binary blocks."""
    import gzip

    n, last = 0, b"\n"
    with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as f:
        while block := f.read(1 << 24):
            n += block.count(b"\n") - block.count(b"\n\n")
            last = block[-1:]
    return n + (last != b"\n")


def _prefetch(items: Iterable, depth: int = 2) -> Iterator:
    """Iterate over ``items`` while a background thread produces the next ones.

    Parsing (pyarrow) and statistics (numpy, arrow) release the GIL, so reading
    chunk k+1 overlaps with processing chunk k on a second core.
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()

    def produce():
        try:
            for item in items:
                q.put(item)
        except BaseException as e:  # handed to the consumer, raised there
            q.put(e)
        q.put(done)

    threading.Thread(target=produce, daemon=True).start()
    while (item := q.get()) is not done:
        if isinstance(item, BaseException):
            raise item
        yield item


def prepare_criteo(
    path: str | Path,
    out: str | Path,
    preprocessor: CTRPreprocessor | None = None,
    how: str = "random",
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    chunk_rows: int = 250_000,
    strict: bool = False,
    max_rows: int | None = None,
    cache_bytes: int = 1 << 30,
    progress: bool = True,
) -> dict[str, int]:
    """Stream a Criteo file into the artifacts of :func:`prepare_frame`; rows per split.

    ``how="time"`` splits by file position (Criteo's files are in time order).
    Parsed chunks are kept between the two passes when the file's estimated
    size in memory is under ``cache_bytes``; otherwise the file is read twice.
    """
    path = Path(path)
    pre = preprocessor or CTRPreprocessor()
    n_total = None
    if how == "time":
        n_total = _count_lines(path) if max_rows is None else min(max_rows, _count_lines(path))

    def chunks():
        return _prefetch(iter_criteo_tables(path, chunk_rows, strict=strict, max_rows=max_rows))

    def codes_of(table: pa.Table, start: int) -> np.ndarray:
        return split_codes(np.arange(start, start + table.num_rows), how, fractions, seed, n_total=n_total)

    first = chunks()  # opening the file checks it before any progress bar is drawn
    # Keep the parsed chunks for the second pass when they fit the budget; an
    # arrow table takes about twice the text's size (a gzip file is ~4x smaller).
    estimate = 2 * path.stat().st_size * (4 if path.suffix == ".gz" else 1)
    cache: list[pa.Table] | None = [] if estimate <= cache_bytes else None
    start, fitted = 0, False
    with tqdm(desc="fit", unit=" rows", disable=not progress, total=n_total) as bar:
        for table in first:
            train = table.filter(pa.array(codes_of(table, start) == 0))
            if train.num_rows:
                pre.partial_fit(train, finalize=False) if fitted else pre.fit(train)
                fitted = True
            start += table.num_rows
            if cache is not None:
                cache.append(table)
            bar.update(table.num_rows)
    if not fitted:
        raise DataError(f"{path}: no training rows to fit on")
    pre.finalize()

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    writers: dict[str, pq.ParquetWriter] = {}
    counts = dict.fromkeys(SPLITS, 0)
    n_rows, start = start, 0
    background = ThreadPoolExecutor(max_workers=1)  # writes in order, overlapping the next transform
    writes = []
    try:
        with tqdm(desc="transform", unit=" rows", disable=not progress, total=n_rows) as bar:
            for table in cache if cache is not None else chunks():
                codes = codes_of(table, start)
                start += table.num_rows
                transformed = pre.transform_table(table)
                for i, name in enumerate(SPLITS):
                    part = transformed.filter(pa.array(codes == i))
                    if name not in writers:
                        writers[name] = pq.ParquetWriter(split_path(out, name), transformed.schema, compression="zstd")
                    writes.append(background.submit(writers[name].write_table, part))
                    counts[name] += part.num_rows
                bar.update(table.num_rows)
        for w in writes:
            w.result()  # raises the first write error, if any
    finally:
        background.shutdown(wait=True)
        for w in writers.values():
            w.close()
    pre.save(out / PREPROCESSOR_FILE)
    return counts


def load_split(data_dir: str | Path, name: str) -> pd.DataFrame:
    """Read one prepared split (``train``, ``val`` or ``test``) as a DataFrame."""
    path = split_path(data_dir, name)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; run `ctrkit prepare --out {data_dir}` first")
    return pq.read_table(path).to_pandas()


def load_preprocessor(data_dir: str | Path) -> CTRPreprocessor:
    return CTRPreprocessor.load(Path(data_dir) / PREPROCESSOR_FILE)


def load_tensors(data_dir: str | Path, name: str, labels=None) -> CTRTensors:
    """One prepared split as :class:`CTRTensors`, ready for :class:`BatchLoader`.

    ``labels``: the label columns for ``y`` (default: every label the data was prepared with).
    """
    spec = load_preprocessor(data_dir).spec
    labels = spec.labels if labels is None else tuple(labels)
    unknown = [c for c in labels if c not in spec.labels]
    if unknown:
        raise ConfigError(f"{data_dir} has no label column {unknown[0]!r}; its labels: {', '.join(spec.labels) or 'none'}"
                          " (`ctrkit prepare --labels` keeps label columns)")
    path = split_path(data_dir, name)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; run `ctrkit prepare --out {data_dir}` first")
    return CTRTensors.from_frame(pq.read_table(path), spec, labels)
