"""Plotly figures shared by the chapters (``ctrkit.plots``).

Importing this module registers the ``ctrkit`` renderer and, outside Colab,
makes it plotly's default. Each figure then carries two outputs: plotly's own
JSON (drawn by JupyterLab, VS Code and Colab) and an HTML ``<div>`` whose
script calls the page's global ``Plotly`` (drawn by the built book, which loads
plotly.js once per page from the installed plotly package). myst-nb does not
render plotly's JSON output, which is why the HTML twin is needed; and unlike
plotly's ``notebook`` renderers it neither embeds 4 MB of plotly.js in every
page nor fetches it from a CDN.
"""

from __future__ import annotations

import sys

import plotly.io as pio
from plotly.io._base_renderers import MimetypeRenderer


class _BookHTML(MimetypeRenderer):
    """A ``text/html`` output that draws with the page's global Plotly."""

    def to_mimebundle(self, fig_dict):
        html = pio.to_html(fig_dict, include_plotlyjs=False, full_html=False, validate=False)
        return {"text/html": html}


pio.renderers["ctrkit_html"] = _BookHTML()
_TEMPLATE = "plotly_white"  # the look of every figure in the book (used by the modules below)
if "google.colab" not in sys.modules:
    pio.renderers.default = "plotly_mimetype+ctrkit_html"

# Figure helpers, by chapter (re-exported here: `from ctrkit import plots; plots.ctr_by_value(...)`).
from ctrkit.plots.data import *  # noqa: E402,F401,F403  chapter 01
from ctrkit.plots.preprocessing import *  # noqa: E402,F401,F403  chapter 02
from ctrkit.plots.models import *  # noqa: E402,F401,F403  chapters 03-04
from ctrkit.plots.training import *  # noqa: E402,F401,F403  chapter 05
from ctrkit.plots.evaluation import *  # noqa: E402,F401,F403  chapter 06
from ctrkit.plots.interpret import *  # noqa: E402,F401,F403  chapter 07
from ctrkit.plots.multitask import *  # noqa: E402,F401,F403  chapter 08
from ctrkit.plots.ope import *  # noqa: E402,F401,F403  chapter 09
from ctrkit.plots.decisions import *  # noqa: E402,F401,F403  chapter 10
