"""The ctrkit book's Sphinx extension (registered in _config.yml under sphinx.local_extensions).

1. Plotly figures drawn offline. Each figure a chapter shows (``ctrkit.plots``) has a
   ``text/html`` output: a ``<div>`` and an inline ``<script>`` calling the page's global
   ``Plotly.newPlot``. So the page must load plotly.js before that script runs: we copy
   ``plotly.min.js`` from the installed plotly package (always the version that made the figure;
   no CDN, no committed copy) into ``_static/`` and load it with a plain ``<script>`` in ``<head>``
   on every page that has a figure.
2. Every build re-executes every chapter, even when the notebook file did not change: its outputs
   also depend on the ctrkit package, which Sphinx does not track.
3. Each inline script is written once. Sphinx 7.4 lists an inline script that an extension adds
   after the build started twice (sphinx-thebe's ``const THEBE_JS_URL = ...``), and declaring a
   ``const`` twice is an error in the browser console.
"""

from pathlib import Path

import plotly
from docutils import nodes

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def copy_plotly_js(app, config):
    config.html_static_path.append(str(PLOTLY_JS))  # a file entry is copied into _static/


def load_plotly_js(app, pagename, templatename, context, doctree):
    """Load plotly.js (synchronously: no async, no defer) on a page whose outputs call Plotly."""
    if doctree and any("Plotly.newPlot" in node.astext() for node in doctree.findall(nodes.raw)):
        app.add_js_file("plotly.min.js")  # added during html-page-context: for this page only


def reread_notebooks(app, env, added, changed, removed):
    return [doc for doc in env.found_docs if str(env.doc2path(doc)).endswith(".ipynb")]


def drop_duplicate_scripts(app, pagename, templatename, context, doctree):
    seen, scripts = set(), []
    for js in context["script_files"]:
        key = (js.filename or "", tuple(sorted(js.attributes.items())))
        if key not in seen:
            seen.add(key)
            scripts.append(js)
    context["script_files"] = scripts


def setup(app):
    app.connect("config-inited", copy_plotly_js)
    app.connect("env-get-outdated", reread_notebooks)
    app.connect("html-page-context", load_plotly_js)
    app.connect("html-page-context", drop_duplicate_scripts, priority=900)  # after everyone added theirs
    return {"parallel_read_safe": True, "parallel_write_safe": True}
