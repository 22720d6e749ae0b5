"""ctrkit: click-through-rate prediction for advertising, the package of the ctrkit book.

Modules, in the order the book teaches them: ``datasets`` (chapter 01),
``preprocessing`` (chapter 02), ``models`` (chapters 03-04), ``training``
(chapter 05), ``metrics`` and ``calibration`` (chapter 06), ``interpret``
(chapter 07), ``ope`` (chapter 09), ``bandits`` and ``bidding`` (chapter 10);
:class:`ctrkit.Predictor` takes raw rows to calibrated
probabilities for ``evaluate``, ``predict`` and serving; ``plots`` holds every
chapter's figures and ``cli`` the command line.
"""

__version__ = "0.1.0"
__all__ = ["Predictor"]


def __getattr__(name: str):
    if name == "Predictor":  # imported on first use: `import ctrkit` stays light (no torch)
        from ctrkit.predictor import Predictor

        return Predictor
    raise AttributeError(f"module 'ctrkit' has no attribute {name!r}")
