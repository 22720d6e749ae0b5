"""ctrkit: click-through-rate prediction for advertising, the package of the ctrkit book.

Modules, in the order the book teaches them: ``datasets`` (chapter 01),
``preprocessing`` (chapter 02), ``metrics``, ``plots``, ``cli``.
"""

__version__ = "0.1.0"
