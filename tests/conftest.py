from contextlib import contextmanager

import pytest

from ctrkit.datasets import synthetic_criteo


@pytest.fixture(scope="session")
def small_df():
    """A small synthetic Criteo-like frame, shared (read-only) by tests."""
    return synthetic_criteo(5_000, seed=0)


@pytest.fixture
def cut_training(monkeypatch):
    """``with cut_training(at=2): fit(...)``: the run stops with KeyboardInterrupt at its ``at``-th validation pass,
    as a crash would (the epochs before it are checkpointed); the trainer is whole again after the block."""
    from ctrkit.training import trainer

    real = trainer.Trainer.validate

    @contextmanager
    def cut(at: int = 2):
        calls = {"n": 0}

        def interrupted(self, model):
            calls["n"] += 1
            if calls["n"] == at:
                raise KeyboardInterrupt
            return real(self, model)

        monkeypatch.setattr(trainer.Trainer, "validate", interrupted)
        try:
            with pytest.raises(KeyboardInterrupt):
                yield
        finally:
            monkeypatch.setattr(trainer.Trainer, "validate", real)

    return cut
