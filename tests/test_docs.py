"""The repository's documents point only at files the repository has."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP = {".git", ".venv", "_build", "node_modules", ".pytest_cache"}


def _text_files():
    for path in ROOT.rglob("*"):
        if path.is_file() and not SKIP & set(path.relative_to(ROOT).parts) and \
                path.suffix in {".md", ".py", ".js", ".ipynb", ".yml", ".yaml", ".toml", ".cfg"} | {""}:
            yield path


def test_named_documents_exist():
    """Every document in capitals that a file names (README.md, CONTRIBUTING.md…) is in the repository's root."""
    named = {}
    for path in _text_files():
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for name in re.findall(r"\b([A-Z][A-Z_]+\.md)\b", text):
            named.setdefault(name, path.relative_to(ROOT))
    assert "CONTRIBUTING.md" in named and "README.md" in named  # the check finds what it looks for
    missing = {name: str(where) for name, where in named.items() if not (ROOT / name).is_file()}
    assert not missing, f"documents named but not in the repository: {missing}"


def _chapters() -> dict[int, str]:
    return {int(p.name[:2]): p.stem for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))}


def test_readme_lists_the_chapters_that_exist():
    """The README's Colab table and its two "available now" lists name every chapter, and no other."""
    import json

    readme = (ROOT / "README.md").read_text()
    chapters = _chapters()
    assert set(int(n) for n in re.findall(r"notebooks/(\d\d)_\w+\.ipynb", readme)) == set(chapters)
    for intro in (r"지금 있는 장:(.*?)\n\n", r"Chapters available now:(.*?)\n\n"):
        listed = re.search(intro, readme, re.S)
        assert listed, intro
        assert set(int(n) for n in re.findall(r"\*\*(\d\d) ", listed.group(1))) == set(chapters), intro
    for number, stem in chapters.items():  # the table's title is the chapter's own
        title = json.loads((ROOT / "notebooks" / f"{stem}.ipynb").read_text())["cells"][0]["source"][0]
        assert title.startswith(f"# {number:02d} "), stem


def test_chapter_pointers_exist():
    """A chapter named in a notebook's prose ("chapter 08", "8장") exists, unless the paragraph says it is being written."""
    import json

    chapters = _chapters()
    pattern = re.compile(r"[Cc]hapters? (\d{1,2})\b|(?<![\d.])(\d{1,2})장")
    found, dangling = 0, []
    for stem in chapters.values():
        cells = json.loads((ROOT / "notebooks" / f"{stem}.ipynb").read_text())["cells"]
        for cell in cells:
            if cell["cell_type"] != "markdown":
                continue
            for paragraph in "".join(cell["source"]).split("\n\n"):
                if "집필 중" in paragraph or "being written" in paragraph:
                    continue
                for m in pattern.finditer(paragraph):
                    found += 1
                    if int(m.group(1) or m.group(2)) not in chapters:
                        dangling.append(f"{stem}: {m.group(0)!r} in {paragraph[:80]!r}")
    assert found > 20  # the check finds what it looks for
    assert not dangling, dangling
