"""The bibliography page (book/bibliography.md) and the chapters' "References" sections agree with what the prose cites."""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
# "Vaswani et al. 2017", "Lundberg & Lee 2017", "Rendle 2010", "Van Calster et al. 2016" in the prose
# (surnames may carry accents: "Mächler 2012")
CITATION = re.compile(r"\b([A-Z][a-zà-öø-ÿ]*(?:[A-Z][a-zà-öø-ÿ]+)?)(?: et al\.| & [A-Z][a-zà-öø-ÿ]+)?,? ((?:19|20)\d\d)\b")
ENTRY = re.compile(r"^- (?P<authors>[^(]+?) \((?P<year>\d{4})\)\. (?P<title>.+?) — (?P<chapters>\d\d(?:, \d\d)*)$")
LINK = re.compile(r"\]\((https?://[^)]+)\)")
HEADING = "## 참고 문헌 · References"


def _entries() -> list[dict]:
    lines = [line for line in (ROOT / "book" / "bibliography.md").read_text().splitlines() if line.startswith("- ")]
    entries = []
    for line in lines:
        m = ENTRY.match(line)
        assert m, f"bibliography entry not in the house format: {line[:80]!r}"
        link = LINK.search(m["title"])
        entries.append({"surname": m["authors"].split(",")[0].split()[-1], "year": m["year"], "line": line,
                        "key": link.group(1) if link else m["title"].split(".")[0],
                        "chapters": set(m["chapters"].split(", "))})
    return entries


def _prose(path: Path) -> tuple[str, list[str]]:
    """A chapter's markdown before its references section, and the references section's two language blocks."""
    cells = ["".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "markdown"]
    refs = [c for c in cells if c.startswith(HEADING)]
    assert len(refs) == 1, f"{path.name}: one markdown cell starting {HEADING!r}"
    blocks = re.findall(r'<div class="lang-(?:ko|en)">\n\n(.*?)\n\n</div>', refs[0], re.S)
    return "\n".join(c for c in cells if c is not refs[0]), blocks


def test_the_bibliography_is_in_the_book():
    assert "- file: bibliography" in (ROOT / "_toc.yml").read_text()
    entries = _entries()
    assert len(entries) >= 25  # the check finds what it looks for
    assert len({e["key"] for e in entries}) == len(entries), "an entry is listed twice"
    chapters = {p.name[:2] for p in CHAPTERS}
    for e in entries:
        assert e["chapters"] <= chapters, e["line"]


def test_every_chapter_lists_what_it_cites():
    entries = _entries()
    for path in CHAPTERS:
        number = path.name[:2]
        prose, blocks = _prose(path)
        assert len(blocks) == 2, f"{path.name}: the references section has a Korean and an English block"
        listed = [e for e in entries if number in e["chapters"]]
        for block in blocks:  # both languages list exactly the works the bibliography files under this chapter
            assert sorted(e["key"] for e in listed if e["key"] in block) == sorted(e["key"] for e in listed), path.name
            assert len(re.findall(r"^- ", block, re.M)) == len(listed), path.name
        cited = {(m[1], m[2]) for m in CITATION.finditer(prose)}
        for surname, year in cited:  # every citation in the prose is in the chapter's list
            assert any(e["surname"] == surname and e["year"] == year for e in listed), \
                f"{path.name} cites {surname} {year} but its references do not list it"
        for e in listed:  # and every listed work is cited in the prose
            assert (e["surname"], e["year"]) in cited, f"{path.name} lists {e['line'][:60]!r} without citing it"
