"""The book's rules for notebooks (CONTRIBUTING.md, "How to add a chapter"), checked on every chapter without running it."""

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
HANGUL = re.compile(r"[\uac00-\ud7a3]")
LANG_DIV = re.compile(r'^<div class="lang-(ko|en)">\n\n(.*)\n\n</div>$', re.S)


def test_chapters_exist():
    assert [p.name[:2] for p in NOTEBOOKS] == [f"{i:02d}" for i in range(1, len(NOTEBOOKS) + 1)]
    assert len(NOTEBOOKS) >= 2


def _blocks(cell):
    """The prose blocks of a markdown cell: ('ko'|'en'|'heading', text)."""
    text = cell.source.strip()
    while text:
        if text.startswith("#"):
            heading, _, text = text.partition("\n")
            yield "heading", heading
        else:
            end = text.find("</div>") + len("</div>")
            m = LANG_DIV.match(text[:end])
            assert m, f"prose outside a lang-ko / lang-en block: {text[:80]!r}"
            yield m.group(1), m.group(2)
            text = text[end:]
        text = text.strip()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_rules(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "outputs must be cleared"
    first = code[0].source
    assert 'find_spec("ctrkit") is None' in first and "%pip install" in first and "torch" not in first.split("%pip")[1]
    hidden = [c for c in code if "remove-cell" in c.metadata.get("tags", [])]
    assert any("assert" in c.source for c in hidden), "claims are checked by hidden assert cells"

    blocks = [b for c in nb.cells if c.cell_type == "markdown" for b in _blocks(c)]
    assert blocks[0][0] == "heading" and blocks[0][1].startswith("# ")
    for kind, text in blocks:
        if kind == "heading":
            assert HANGUL.search(text) and re.search(r"[A-Za-z]{3}", text), f"heading not bilingual: {text}"
        elif kind == "ko":
            assert HANGUL.search(text), f"Korean block without Korean: {text[:60]!r}"
        else:
            assert not HANGUL.search(text), f"English block with Korean: {text[:60]!r}"
    prose = [k for k, _ in blocks if k != "heading"]
    pairs = list(zip(prose[::2], prose[1::2]))
    assert len(prose) % 2 == 0 and all(p == ("ko", "en") for p in pairs), "every Korean block is followed by its English twin"
