"""Preprocessing: the fitted preprocessor, the feature spec, tensors and batches (chapter 02)."""

from ctrkit.preprocessing.loader import BatchLoader, CTRTensors
from ctrkit.preprocessing.prepare import (
    PREPROCESSOR_FILE,
    load_preprocessor,
    load_split,
    load_tensors,
    prepare_criteo,
    prepare_frame,
    split_path,
)
from ctrkit.preprocessing.preprocessor import CTRPreprocessor
from ctrkit.preprocessing.spec import (
    MISSING,
    MISSING_FLAG,
    OOV,
    VALUE,
    DenseColumn,
    FeatureSpec,
    SparseField,
    suggest_embed_dim,
)
