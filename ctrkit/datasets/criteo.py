"""The Criteo Display Advertising Challenge format: schema, reader and writer.

Chapter 01 explains the format. A line is tab-separated, with no header:
``click, I1..I13, C1..C26`` — 13 integer count features and 26 categorical
features hashed to 8 hex digits. An empty field is a missing value. The public
``test.txt`` has no label column. Real dumps contain the odd malformed line
(wrong number of fields, text in an integer column); the reader skips and counts
them, or raises with ``strict=True``.

Reading uses pyarrow's CSV reader (C++, no per-line Python) and streams the file
in chunks, so the 11 GB Kaggle set never has to fit in memory.
"""

from __future__ import annotations

import gzip
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ctrkit.errors import DataError

LABEL = "click"  # the first column of a Criteo file: 1 if the ad was clicked
DENSE = [f"I{i}" for i in range(1, 14)]
SPARSE = [f"C{i}" for i in range(1, 27)]
_N_REPORTED = 10  # line numbers quoted in the malformed-lines warning
_INT_PATTERN = r"^[-+]?[0-9]{1,18}$"


class MalformedLinesWarning(UserWarning):
    """Some lines of a Criteo file were skipped."""


def criteo_columns(has_label: bool = True) -> list[str]:
    """Column names of a Criteo file, in file order."""
    return ([LABEL] if has_label else []) + DENSE + SPARSE


def _open_text(path: Path):
    return gzip.open(path, "rt") if path.suffix == ".gz" else open(path)


def _check_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a Criteo file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    return path


def _sniff_label(path: Path, n_lines: int = 200) -> bool:
    """True for a train file (40 fields), False for a test file (39 fields)."""
    counts = []
    try:
        with _open_text(path) as f:
            for line in f:
                if line.strip("\r\n"):
                    counts.append(line.rstrip("\r\n").count("\t") + 1)
                if len(counts) == n_lines:
                    break
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot be read as text ({e})") from None
    if not counts:
        raise DataError(f"{path}: file is empty")
    fields = max(set(counts), key=counts.count)
    if fields not in (39, 40):
        raise DataError(
            f"{path}: lines have {fields} tab-separated fields; a Criteo file has 40 (train) or 39 (test)"
        )
    return fields == 40


def _physical_lines(rows: np.ndarray, skipped: np.ndarray) -> np.ndarray:
    """1-based file line numbers of parsed rows, given the sorted line numbers the parser skipped."""
    lines = rows + 1
    for _ in range(len(skipped) + 1):  # fixed point: each pass accounts for more skipped lines
        shifted = rows + 1 + np.searchsorted(skipped, lines, side="right")
        if np.array_equal(shifted, lines):
            break
        lines = shifted
    return lines


def iter_criteo_tables(
    path: str | os.PathLike,
    chunk_rows: int = 1_000_000,
    *,
    has_label: bool | None = None,
    strict: bool = False,
    max_rows: int | None = None,
) -> Iterator[pa.Table]:
    """Stream a Criteo file as pyarrow tables of ``chunk_rows`` rows (the last may be shorter).

    The arrow twin of :func:`iter_criteo`; ``ctrkit prepare`` uses it to avoid
    pandas copies. Integer columns come back as float64 (missing = NaN).
    """
    path = _check_file(path)  # checked now, not at the first next(): errors surface at the call
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be positive, got {chunk_rows}")
    if has_label is None:
        has_label = _sniff_label(path)
    return _iter_tables(path, chunk_rows, has_label, strict, max_rows)


def _iter_tables(path: Path, chunk_rows: int, has_label: bool, strict: bool, max_rows: int | None) -> Iterator[pa.Table]:
    columns = criteo_columns(has_label)
    skipped: list[int] = []  # line numbers of lines with the wrong number of fields

    def on_invalid_row(row):
        skipped.append(row.number)
        return "skip"

    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(column_names=columns, use_threads=False, block_size=1 << 22),
        parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False, invalid_row_handler=on_invalid_row),
        convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in columns},
            strings_can_be_null=True,
            null_values=[""],
        ),
    )
    n_parsed = 0  # rows the parser returned so far (before the integer check)
    n_out = 0
    bad_int_lines: list[int] = []
    n_bad_int = 0
    pending: list[pa.Table] = []
    n_pending = 0
    for batch in reader:
        table, ok = _typed(pa.Table.from_batches([batch]), has_label)
        if ok is not None:
            bad = np.flatnonzero(~ok)
            n_bad_int += len(bad)
            if len(bad_int_lines) < _N_REPORTED or strict:
                rows = n_parsed + bad[:_N_REPORTED]
                bad_int_lines += _physical_lines(rows, np.sort(np.asarray(skipped, dtype=np.int64))).tolist()
        n_parsed += batch.num_rows
        if strict and (skipped or n_bad_int):
            first = min(skipped + bad_int_lines)
            why = "wrong number of fields" if first in skipped else "a non-integer value in an integer column"
            raise DataError(f"{path}: line {first}: {why}")
        pending.append(table)
        n_pending += table.num_rows
        while n_pending >= chunk_rows or (max_rows is not None and n_out + n_pending >= max_rows):
            whole = pa.concat_tables(pending)
            size = chunk_rows if max_rows is None else min(chunk_rows, max_rows - n_out)
            yield whole.slice(0, size)
            n_out += size
            pending, n_pending = [whole.slice(size)], whole.num_rows - size
            if max_rows is not None and n_out >= max_rows:
                _warn_malformed(path, skipped, bad_int_lines, n_bad_int)
                return
    if n_pending:
        yield pa.concat_tables(pending)
        n_out += n_pending
    _warn_malformed(path, skipped, bad_int_lines, n_bad_int)
    if n_out == 0:
        raise DataError(f"{path}: no valid Criteo lines")


def _typed(table: pa.Table, has_label: bool) -> tuple[pa.Table, np.ndarray | None]:
    """Cast the parsed string columns to the schema's types.

    Returns the typed table and, when some rows hold a non-integer in an integer
    column, the mask of good rows (the bad ones are already dropped).
    """
    ints = ([LABEL] if has_label else []) + DENSE
    try:  # the fast path: every value parses
        cast = {c: pc.cast(table[c], pa.int64()) for c in ints}
        ok = None
    except pa.ArrowInvalid:
        ok = np.ones(table.num_rows, dtype=bool)
        for c in ints:
            valid = pc.or_kleene(pc.is_null(table[c]), pc.match_substring_regex(table[c], _INT_PATTERN))
            ok &= valid.to_numpy()
        table = table.filter(pa.array(ok))
        cast = {c: pc.cast(table[c], pa.int64()) for c in ints}
    arrays = []
    for name in table.column_names:
        if name == LABEL:
            arrays.append(pc.cast(cast[name], pa.int8()))
        elif name in DENSE:
            arrays.append(pc.cast(cast[name], pa.float64()))
        else:
            arrays.append(table[name])
    return pa.table(arrays, names=table.column_names), ok


def _warn_malformed(path: Path, skipped: list[int], bad_int_lines: list[int], n_bad_int: int) -> None:
    n = len(skipped) + n_bad_int
    if n:
        first = sorted(skipped[:_N_REPORTED] + bad_int_lines)[:_N_REPORTED]
        warnings.warn(
            f"{path}: skipped {n} malformed line(s) "
            f"({len(skipped)} with a wrong field count, {n_bad_int} with a non-integer count); "
            f"first at line(s) {', '.join(map(str, first))}",
            MalformedLinesWarning,
            stacklevel=4,
        )


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    return table.to_pandas(types_mapper={pa.string(): pd.StringDtype("pyarrow")}.get)


def iter_criteo(
    path: str | os.PathLike,
    chunk_rows: int = 1_000_000,
    *,
    has_label: bool | None = None,
    strict: bool = False,
    max_rows: int | None = None,
) -> Iterator[pd.DataFrame]:
    """Stream a Criteo file (plain or ``.gz``) as DataFrames of ``chunk_rows`` rows.

    ``has_label=None`` detects train (40 fields) vs test (39 fields) files.
    Malformed lines are skipped with one :class:`MalformedLinesWarning` giving
    their count and first line numbers; ``strict=True`` raises :class:`DataError`
    instead. Chapter 01.
    """
    tables = iter_criteo_tables(path, chunk_rows, has_label=has_label, strict=strict, max_rows=max_rows)
    return (_to_pandas(table) for table in tables)


def read_criteo(
    path: str | os.PathLike,
    *,
    has_label: bool | None = None,
    strict: bool = False,
    max_rows: int | None = None,
) -> pd.DataFrame:
    """Read a whole Criteo file into one DataFrame (see :func:`iter_criteo`). Chapter 01.

    Integer features are float64 with NaN for missing values; categorical
    features are strings with ``<NA>`` for missing values.
    """
    tables = list(iter_criteo_tables(path, 1 << 62, has_label=has_label, strict=strict, max_rows=max_rows))
    return _to_pandas(pa.concat_tables(tables))


def write_criteo(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a frame in the raw Criteo format (``.gz`` compresses). Chapter 01.

    Writes ``label`` when the frame has it (a train file), otherwise a test file;
    other columns (``p_click``, ``ts``…) are not part of the format and are dropped.
    """
    path = Path(path)
    missing = [c for c in DENSE + SPARSE if c not in df.columns]
    if missing:
        raise DataError(f"cannot write a Criteo file: columns missing: {', '.join(missing)}")
    columns = criteo_columns(LABEL in df.columns)
    arrays = []
    for c in columns:
        values = df[c]
        if c in SPARSE:
            arrays.append(pa.array(values, type=pa.string(), from_pandas=True))
        else:
            arrays.append(pa.array(values.to_numpy(dtype=np.float64, na_value=np.nan), from_pandas=True).cast(pa.int64()))
    table = pa.table(arrays, names=columns)
    options = pacsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none")
    sink = pa.CompressedOutputStream(str(path), "gzip") if path.suffix == ".gz" else str(path)
    pacsv.write_csv(table, sink, write_options=options)
    if not isinstance(sink, str):
        sink.close()
    return path
