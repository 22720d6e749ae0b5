"""Every chapter runs on a real Criteo file when its CRITEO_PATH parameter is set (the default stays the twin); a
chapter that needs what Criteo's logs lack (chapter 08: conversions) has the parameter too, and says so when it is set.

The file here is in Criteo's format but written from the twin (no project test reads real data): it has no
p_click, no timestamp and no user id, as a real file has none, and 5,000 rows keep each chapter short.
"""

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from ctrkit.datasets import synthetic_criteo, write_criteo

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PARAMETER = "CRITEO_PATH = None"
# The chapters that read the file (chapter 08 needs conversions, which Criteo's logs lack: it says so and stays on the twin)
READERS = [p for p in NOTEBOOKS if "read_criteo(CRITEO_PATH" in p.read_text() or "str(CRITEO_PATH)" in p.read_text()]


@pytest.fixture(scope="module")
def criteo_file(tmp_path_factory):
    return write_criteo(synthetic_criteo(5_000, seed=3), tmp_path_factory.mktemp("criteo") / "train.txt")


def test_every_chapter_has_the_parameter():
    for path in NOTEBOOKS:
        cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
        assert sum(PARAMETER in "".join(c["source"]) for c in cells) == 1, path.name


def test_the_chapters_that_can_use_a_criteo_file_read_it():
    assert [p.stem[:2] for p in READERS] == [f"{i:02d}" for i in range(1, 8)]


@pytest.mark.parametrize("path", READERS, ids=lambda p: p.stem)
def test_chapter_runs_on_a_criteo_file(path, criteo_file):
    nb = nbformat.read(path, as_version=4)
    (cell,) = [c for c in nb.cells if c.cell_type == "code" and PARAMETER in c.source]
    cell.source = cell.source.replace(PARAMETER, f"CRITEO_PATH = {str(criteo_file)!r}")
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert str(criteo_file) in cell.source  # the parameter was set in the run
