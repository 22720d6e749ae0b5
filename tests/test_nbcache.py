"""tests/nbcache.py: a notebook whose cells all pass reaches the site build's cache with its outputs; a failing one does not."""

from pathlib import Path

import nbformat
import pytest
from jupyter_cache import get_cache

pytest_plugins = ["pytester"]


def _notebook(path, *sources):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# title")]
                                  + [nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.mark.parametrize("failing", [False, True])
def test_only_passing_notebooks_are_cached(pytester, monkeypatch, failing):
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parents[1]))  # `-p tests.nbcache` from the repository
    _notebook(pytester.path / "chapter.ipynb", "x = 6 * 7\nprint(x)", "x", "assert x == 41" if failing else "x + 1")
    cache = pytester.path / "cache"
    result = pytester.runpytest_subprocess("-p", "tests.nbcache", "--nb-cache", str(cache), "--nbval-lax",
                                           "chapter.ipynb", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2 if failing else 3, failed=1 if failing else 0)
    if failing:  # (jupyter-cache's own reader is used once per process: its SQLAlchemy setup fails a second time)
        assert not list(cache.glob("executed/*/*.ipynb"))
        return
    # what jupyter-book does: match the source notebook (no outputs) to the cache, then read the outputs
    source = nbformat.read(pytester.path / "chapter.ipynb", as_version=4)
    record = get_cache(str(cache)).match_cache_notebook(source)
    nb = get_cache(str(cache)).get_cache_bundle(record.pk).nb
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].outputs[0].text == "42\n" and code[1].outputs[0].data["text/plain"] == "42"
    assert [c.execution_count for c in code] == [1, 2, 3] and code[2].outputs[0].execution_count == 3
    assert nb.metadata.language_info["pygments_lexer"] == "ipython3"
