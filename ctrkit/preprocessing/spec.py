"""The feature spec (chapter 02): the typed schema between prepared data and models.

Every column has one role, said once, here: a float column of ``x_dense`` is a
numeric field's value or its missing flag (:class:`DenseColumn`), an integer
column of ``x_sparse`` is a categorical or binned field (:class:`SparseField`),
and the rest are label or passthrough columns. Models read fields and
vocabulary sizes from a :class:`FeatureSpec`, never from column names.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

MISSING, OOV = 0, 1  # reserved categorical ids
VALUE, MISSING_FLAG = "value", "missing"  # the roles of a dense column


def suggest_embed_dim(vocab_size: int) -> int:
    """Embedding size for a field: ``min(50, round(6 * vocab_size ** 0.25))``.

    The heuristic of the Deep & Cross Network paper (Wang et al., 2017): the
    dimension grows with the fourth root of the vocabulary (as in Google's
    feature-column guide), so a 10-value field gets 11 and a 100k-value field
    50 (the cap). Chapter 02.
    """
    return int(min(50, round(6 * vocab_size**0.25)))


@dataclass(frozen=True)
class DenseColumn:
    """One float column of ``x_dense``: the numeric field it belongs to and its role.

    ``role`` is ``"value"`` (the scaled number) or ``"missing"`` (1.0 where the
    raw value was missing).
    """

    name: str
    field: str
    role: str = VALUE


@dataclass(frozen=True)
class SparseField:
    """One integer column of ``x_sparse``: a categorical (or binned numeric) field."""

    name: str
    vocab_size: int  # including the reserved ids
    embed_dim: int  # the preprocessor's suggestion (chapter 02)
    hashed: bool = False
    binned: bool = False  # a numeric field cut into quantile bins (id 0 is still "missing")


@dataclass(frozen=True)
class FeatureSpec:
    """What models and trainers need to know about the columns (the schema between data and models).

    ``dense`` describes the float columns of ``x_dense`` in order, ``sparse``
    the integer columns of ``x_sparse``; ``labels`` the target columns the data
    carries, ``passthrough`` the other columns kept beside the features.
    Models read vocabulary sizes and fields from here, never from column names.
    """

    dense: tuple[DenseColumn, ...]
    sparse: tuple[SparseField, ...]
    labels: tuple[str, ...] = ()
    passthrough: tuple[str, ...] = ()

    @property
    def dense_names(self) -> tuple[str, ...]:
        """The columns of ``x_dense``, in order."""
        return tuple(c.name for c in self.dense)

    @property
    def numeric_fields(self) -> tuple[str, ...]:
        """The numeric fields that reach a model as a number (none when they are binned)."""
        return tuple(c.field for c in self.dense if c.role == VALUE)

    @property
    def fields(self) -> tuple[str, ...]:
        """Every field a model sees, in the order of its tokens: numeric fields first, then ``x_sparse``'s."""
        return self.numeric_fields + tuple(s.name for s in self.sparse)

    @property
    def n_fields(self) -> int:
        return len(self.fields)

    def dense_index(self, field: str, role: str = VALUE) -> int | None:
        """The ``x_dense`` column of ``field`` in ``role``, or None when there is none."""
        return next((i for i, c in enumerate(self.dense) if c.field == field and c.role == role), None)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FeatureSpec:
        return cls(tuple(DenseColumn(**c) for c in d["dense"]), tuple(SparseField(**s) for s in d["sparse"]),
                   tuple(d["labels"]), tuple(d["passthrough"]))
