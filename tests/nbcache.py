"""A pytest plugin that hands the notebooks nbval executed to the site build, so each chapter runs once per `make test`.

    python -m pytest -p tests.nbcache --nb-cache book/_build/.jupyter_cache --nbval-lax notebooks

nbval runs every cell of a chapter in one kernel and fails on any error (the
hidden assert cells included). When every cell of a notebook passed, this
plugin writes the notebook with the outputs nbval received into the
jupyter-cache that ``jupyter-book build`` reads (``execute_notebooks: cache``),
so the build renders those outputs instead of executing the chapter again. A
notebook with a failing cell is not cached: the build would execute it, and
fail on it, again. ``make test`` empties the cache first, so no output from an
earlier run of the package is reused.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest


def pytest_addoption(parser):
    parser.addoption("--nb-cache", metavar="DIR", type=Path,
                     help="write each notebook whose cells all passed, with its outputs, into this jupyter-cache")


class _Executed:
    def __init__(self, cache: Path):
        self.cache, self.files = cache, {}

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        report = (yield).get_result()
        if not hasattr(item, "test_outputs") or report.when not in ("setup", "call"):
            return
        state = self.files.setdefault(item.parent, {"passed": True, "cells": 0, "started": time.perf_counter()})
        if report.failed or report.skipped:
            state["passed"] = False
        elif report.when == "call":
            state["cells"] += 1
            item.cell.outputs = item.test_outputs
            item.cell.execution_count = state["cells"]
            for output in item.test_outputs:
                if output.output_type == "execute_result":
                    output.execution_count = state["cells"]

    def pytest_sessionfinish(self, session):
        from ipykernel.ipkernel import IPythonKernel
        from jupyter_cache import get_cache
        from jupyter_cache.base import CacheBundleIn

        cache = get_cache(str(self.cache))
        for notebook, state in self.files.items():
            if state["passed"] and state["cells"] == sum(c.cell_type == "code" for c in notebook.nb.cells):
                seconds = time.perf_counter() - state["started"]
                # what a kernel tells the executor jupyter-book would have run: code is highlighted as IPython
                notebook.nb.metadata["language_info"] = dict(IPythonKernel.language_info)
                cache.cache_notebook_bundle(CacheBundleIn(notebook.nb, str(notebook.path),
                                                          data={"execution_seconds": seconds}),
                                            check_validity=False, overwrite=True)


def pytest_configure(config):
    if config.getoption("--nb-cache"):
        config.pluginmanager.register(_Executed(config.getoption("--nb-cache")), "nbcache-executed")
