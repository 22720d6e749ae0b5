import numpy as np
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from ctrkit.metrics import auc, logloss


def test_match_scikit_learn():
    rng = np.random.default_rng(0)
    y = rng.random(2_000) < 0.3
    p = np.clip(0.3 + 0.2 * y + rng.normal(0, 0.2, 2_000), 0.01, 0.99)
    p[:50] = 0.5  # ties
    assert auc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert logloss(y, p) == pytest.approx(log_loss(y, p), abs=1e-12)


def test_auc_needs_both_classes():
    with pytest.raises(ValueError, match="one class"):
        auc([1, 1], [0.2, 0.3])
