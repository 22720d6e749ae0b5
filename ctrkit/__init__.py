"""ctrkit: click-through-rate prediction for advertising, the package of the ctrkit book.

Modules, in the order the book teaches them: ``datasets`` (chapter 01),
``preprocessing`` (chapter 02), ``models`` (chapters 03-04), ``training``
(chapter 05), ``metrics`` and ``calibration`` (chapter 06), ``interpret``
(chapter 07); ``plots`` holds every chapter's figures and ``cli`` the command line.
"""

__version__ = "0.1.0"
