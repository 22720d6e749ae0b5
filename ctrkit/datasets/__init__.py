"""Criteo data: the schema, the reader and writer, the synthetic twin, and splits (chapter 01)."""

from ctrkit.datasets.criteo import (
    DENSE,
    LABEL,
    SPARSE,
    DataError,
    MalformedLinesWarning,
    criteo_columns,
    iter_criteo,
    iter_criteo_tables,
    read_criteo,
    write_criteo,
)
from ctrkit.datasets.synthetic import SYNTHETIC_LABELS, SyntheticTruth, bayes_optimal_metrics, synthetic_criteo, synthetic_truth
from ctrkit.datasets.splits import SPLITS, split, split_codes
