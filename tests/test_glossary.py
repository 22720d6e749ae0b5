"""The glossary (book/glossary.md) pairs every technical term the chapters use, in both of its tables, and the book's
Korean uses one term per idea.

Terms are collected from the Korean prose of the chapters in three ways, each precise enough to fail only on a real
omission:

* first mentions, ``한국어 용어(English term)``: the glossary must have a row whose English matches the parenthesis and
  whose Korean is the term in front of it (so the chapter and the glossary also agree on the Korean);
* bold terms (``**약한 보정**``): labels, bold sentences and emphasised words are left out by rule, the few other
  non-terms by the allow-list ``NOT_TERMS_BOLD``;
* names written in Latin letters with two capitals or more (AUC, DeepFM, LayerNorm…), less the proper names of
  software, hardware and cited papers in ``NOT_TERMS_LATIN``.
"""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
GLOSSARY = ROOT / "book" / "glossary.md"
HANGUL = "\uac00-\ud7a3"

# Bold words in the prose that are emphasis or list labels, not terms.
NOT_TERMS_BOLD = {"하나", "안쪽", "같은 임베딩", "그래디언트 균형", "수렴 속도", "원본 카운트", "넓은 구간", "속도", "concat 풀링"}
# Words that qualify a glossary term in a bold label ("범주형 주효과", "범주형 × 수치형 상호작용", "사용자 절편").
QUALIFIERS = {"범주형", "수치형", "사용자", "×"}
# Korean endings that mark an emphasised phrase rather than a term ("값에 따라", "하나씩만", "2부터").
PARTICLES = ("을", "를", "에", "의", "만", "부터", "까지", "뿐", "지")
# Proper names in Latin letters that are not terms of the book.
NOT_TERMS_LATIN = {
    # software, libraries and file formats
    "PyTorch", "DataFrame", "JSON", "CSV", "README", "CLI", "CUDA", "FlashAttention", "oneDNN", "GradientExplainer",
    "SipHash-2-4",
    # hardware
    "CPU", "GPU", "AMX", "AVX-512", "BF16",
    # cited models, papers and datasets
    "BERT", "FT-Transformer", "DCNv3", "DIN", "SGDR", "Ali-CCP", "ZOZOTOWN",
    # units and values
    "GB", "NaN",
}
# Terms a reviewer found missing; kept as a regression check on top of the automatic collection.
REVIEWED = ["AUC", "PR-AUC", "focal loss", "FM", "DeepFM", "DCNv2", "AutoInt", "Bayes-optimal", "cardinality", "FLOP",
            "dropout", "synthetic twin", "LightGBM", "LayerNorm", "GELU", "Zipf distribution"]


# ---- reading the book -----------------------------------------------------------------------------------------------

def _markdown(path: Path) -> str:
    """A chapter's markdown prose, without its list of cited works (author names and venues are not terms)."""
    cells = json.loads(path.read_text())["cells"]
    return "\n\n".join("".join(c["source"]) for c in cells
                        if c["cell_type"] == "markdown" and not "".join(c["source"]).startswith("## 참고 문헌"))


def _blocks(text: str, lang: str) -> list[str]:
    return [part.split("</div>")[0] for part in text.split(f'<div class="lang-{lang}">')[1:]]


def _korean_chapters() -> dict[str, str]:
    """Chapter stem -> the Korean prose of its markdown cells."""
    return {p.stem: "\n\n".join(_blocks(_markdown(p), "ko")) for p in NOTEBOOKS}


def _table(block: str) -> list[tuple[str, str]]:
    """The (first column, second column) of each row of the markdown table in a glossary block, in file order."""
    rows = []
    for line in block.splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows.append((cells[0].removeprefix("**").removesuffix("**"), cells[1]))
    return rows[1:]  # without the header


def _glossary() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(Korean table rows as (한국어, English), English table rows as (English, 한국어))."""
    text = GLOSSARY.read_text()
    return _table(_blocks(text, "ko")[0]), _table(_blocks(text, "en")[0])


def _norm(s: str) -> str:
    return re.sub(r"@\w+", "", " ".join(s.split()).casefold())


def _english_keys(cell: str) -> set[str]:
    """The ways prose may name a glossary entry: "dense (numeric) feature" -> dense numeric feature, dense feature,
    dense, numeric; "logloss (binary cross-entropy, BCE)" -> … binary cross-entropy, BCE."""
    keys = {cell, re.sub(r"[()]", "", cell), re.sub(r"\s*\([^)]*\)", "", cell), cell.split(" (")[0]}
    for inner in re.findall(r"\(([^)]*)\)", cell):
        keys |= {inner, *inner.split(", ")}
    return {_norm(k) for k in keys if k.strip()}


def _rows_by_key() -> dict[str, list[str]]:
    """English key -> the Korean terms of the Korean-table rows it names."""
    by_key: dict[str, list[str]] = {}
    for ko, en in _glossary()[0]:
        for key in _english_keys(en):
            by_key.setdefault(key, []).append(ko)
    return by_key


# ---- collecting the chapters' terms -------------------------------------------------------------------------------

FIRST_MENTION = re.compile(r"\(([A-Za-z][A-Za-z .,'/@\-\n]*)\)")


def _first_mentions() -> list[tuple[str, str, str]]:
    """(chapter, Korean text before the parenthesis, English term) for every ``한국어 용어(English term)``."""
    found = []
    for stem, ko in _korean_chapters().items():
        for m in FIRST_MENTION.finditer(ko):
            english = " ".join(m.group(1).split())
            before = ko[: m.start()].removesuffix("**").rsplit("\n", 1)[-1].replace("**", "")
            if not re.search(f"[{HANGUL}]$", before):
                continue  # "logit(p)", "1(OOV)": not a Korean term in front
            if re.search(r"\d|et al|/", english) or english.count(",") > 1:
                continue  # citations, ratios and units ("samples/s"), lists of examples
            found.append((stem, before, english))
    return found


def _bold_terms(glossary_words: set[str]) -> list[tuple[str, str]]:
    """(chapter, term) for bold terms in the Korean prose, without labels, sentences and emphasis."""
    found = []
    for stem, ko in _korean_chapters().items():
        for m in re.finditer(r"\*\*([^*\n]+?)\*\*", ko):
            span = m.group(1).strip().removesuffix(".")
            words = [w for w in span.split() if w != "×"]
            if (m.start() == 0 or ko[m.start() - 1] == "\n") and ko[m.end(): m.end() + 1] in (":", "\n", ""):
                continue  # a heading-like label: **소요 시간**: …, **이 장에서 배우는 것**
            if re.search(r"[(`=]", span) or span.endswith("다") or len(words) > 3:
                continue  # first mentions (checked above), code, sentences
            if any(w.endswith(PARTICLES) and w not in glossary_words for w in words):
                continue  # emphasis: **나중에**, **값에 따라**
            found.append((stem, span))
    return found


def _latin_terms() -> list[tuple[str, str]]:
    """(chapter, name) for names with two capitals or more in the Korean prose, outside code, math and citations."""
    found = []
    for stem, ko in _korean_chapters().items():
        text = re.sub(r"`[^`]*`|\$\$.*?\$\$|\$[^$]*\$|\]\([^)]*\)", " ", ko, flags=re.S)
        text = re.sub(r"\([^()]*\d{4}[^()]*\)", " ", text)  # (Author et al. 2019)
        for m in re.finditer(r"(?<![\w\[\-./@])[A-Za-z][A-Za-z0-9+@\-/]*[A-Za-z0-9+]", text):
            for name in m.group(0).split("/"):
                name = re.sub(r"@\w+$", "", name).rstrip("+")
                if sum(c.isupper() for c in name) >= 2:
                    found.append((stem, name))
    return found


# ---- the glossary covers the chapters -------------------------------------------------------------------------------

def test_first_mentions_are_in_the_glossary():
    """Every ``한국어 용어(English term)`` in a chapter is a glossary row: the English names it, the Korean is its term."""
    by_key = _rows_by_key()
    found = _first_mentions()
    assert len(found) > 120  # the check finds what it looks for
    missing = []
    for stem, before, english in found:
        parts = {english, *english.split(", ")}
        candidates = [ko for part in parts for ko in by_key.get(_norm(part), [])]
        if not any(re.search(f"(^|[^{HANGUL}]){re.escape(ko)}$", before) for ko in candidates):
            hint = f" -> the glossary calls it {candidates}" if candidates else ""
            missing.append(f"{stem}: {before[-20:]}({english}){hint}")
    assert not missing, "first mentions missing from the glossary, or named differently there:\n" + "\n".join(missing)


def test_bold_terms_are_in_the_glossary():
    """Every bold term of the Korean prose is a glossary term, or glossary terms with a qualifier (범주형 필드)."""
    korean = {ko for ko, _ in _glossary()[0]}
    words = {w for ko in korean for w in ko.split()}
    found = _bold_terms(words)
    assert len(found) > 30  # the check finds what it looks for

    def covered(span: str) -> bool:
        if span in korean or span in NOT_TERMS_BOLD:
            return True
        for part in re.split(f"(?<=[{HANGUL}])[와과] (?=[{HANGUL}])", span):  # 완전 랭크와 저랭크
            tokens, i = part.split(), 0
            while i < len(tokens):
                j = next((j for j in range(len(tokens), i, -1) if " ".join(tokens[i:j]) in korean), None)
                if j is None and tokens[i] not in QUALIFIERS:
                    return False
                i = j or i + 1
        return True

    missing = sorted({f"{stem}: **{span}**" for stem, span in found if not covered(span)})
    assert not missing, "bold terms missing from the glossary (non-terms go in NOT_TERMS_BOLD):\n" + "\n".join(missing)


def test_latin_names_are_in_the_glossary():
    """Every acronym or model name in the Korean prose (AUC, DeepFM, LayerNorm…) is a glossary entry."""
    keys = set(_rows_by_key())
    found = _latin_terms()
    assert len({name for _, name in found}) > 30  # the check finds what it looks for
    missing = sorted({f"{stem}: {name}" for stem, name in found
                      if _norm(name) not in keys and name not in NOT_TERMS_LATIN})
    assert not missing, "names missing from the glossary (proper names go in NOT_TERMS_LATIN):\n" + "\n".join(missing)


@pytest.mark.parametrize("term", REVIEWED)
def test_reviewed_terms_are_in_both_tables(term):
    korean_table, english_table = _glossary()
    english_prose = " ".join("\n".join(_blocks(_markdown(p), "en")) for p in NOTEBOOKS)
    assert re.search(rf"(?<![\w-]){re.escape(term)}", english_prose, re.I), f"no chapter uses {term!r} any more"
    assert any(_norm(term) in _english_keys(en) for _, en in korean_table), f"{term!r} missing from the Korean table"
    assert any(_norm(term) in _english_keys(en) for en, _ in english_table), f"{term!r} missing from the English table"


# ---- the two tables pair up ------------------------------------------------------------------------------------------

def test_the_two_tables_pair_up():
    korean_table, english_table = _glossary()
    assert len(korean_table) > 150
    ko_pairs = set(korean_table)
    en_pairs = {(ko, en) for en, ko in english_table}
    assert not ko_pairs - en_pairs, f"Korean-table rows missing from the English table: {sorted(ko_pairs - en_pairs)}"
    assert not en_pairs - ko_pairs, f"English-table rows missing from the Korean table: {sorted(en_pairs - ko_pairs)}"


@pytest.mark.parametrize("table", [0, 1], ids=["korean", "english"])
def test_each_table_is_sorted_without_duplicates(table):
    """The Korean table is in 가나다 order (terms in Latin letters first), the English one alphabetical."""
    terms = [first for first, _ in _glossary()[table]]
    duplicates = sorted({t for t in terms if terms.count(t) > 1})
    assert not duplicates, f"duplicate rows: {duplicates}"
    out_of_order = [(a, b) for a, b in zip(terms, terms[1:]) if a.casefold() > b.casefold()]
    assert not out_of_order, f"rows out of order: {out_of_order}"


# ---- one Korean term per idea ----------------------------------------------------------------------------------------

# (discouraged variant, the book's term, why, an example of the variant). Searched in the Korean prose of the chapters,
# the glossary, the README and the landing page.
DISCOURAGED = [
    (r"기준 클릭률", "기저율", "base rate", "기준 클릭률"),
    (r"기준선", "베이스라인", "a baseline model; an attribution baseline is 기준점", "현업의 기준선"),
    (r"기준 입력", "기준점", "attribution baseline", "기준 입력에서"),
    (r"어텐션 지도|가중치 지도|(?<![가-힣])지도(?!\s*학습)", "어텐션 맵", "attention map (지도 is supervision in 지도 학습)",
     "9절의 지도를"),
    (r"주 효과", "주효과", "main effect", "필드의 주 효과"),
    (r"경사하강", "경사 하강법", "gradient descent", "경사하강법"),
    (r"몫", "기여도", "attribution", "필드별 몫"),
    (r"Zipf 분포", "지프 분포", "Zipf distribution", "Zipf 분포를"),
    (r"LBFGS", "L-BFGS", "one spelling", "LBFGS로"),
    (r"잔차 경로", "잔차 분기 / 잔차 연결", "residual branch vs residual connection", "잔차 경로"),
    (r"층[·,]\s*(?:한\s*)?헤드|층마다,\s*헤드", "블록·헤드", "a Transformer block is 블록, not 층", "한 층·한 헤드"),
    (r"정직[^.\n]{0,20}(?:분할|선택|평가)|(?:분할|평가)[^.\n]{0,20}정직", "누수 없는 분할", "calque of 'the honest split'",
     "시간 순 분할이 정직한 선택"),
    (r"조건이 좋아", "조건수가 작아", "calque of 'well-conditioned'", "조건이 좋아지고"),
    (r"헤드가 읽", "헤드의 입력", "calque of 'what the head reads'", "헤드가 읽는 것"),
    (r"(?:토큰|필드|서로)들?[을를]\s*(?:골라 |고르게 |많이 )?\*?읽|읽(?:는|히는|은) (?:토큰|필드|비율)|무엇을 읽",
     "참조한다", "attention 'reads' a token: calque", "필드를 골라 읽는"),
    (r"레버", "설계 선택", "calque of 'lever'", "도움이 된 레버"),
    (r"속도를 샀", "속도를 얻었", "calque of 'bought speed'", "속도를 샀습니다"),
    (r"예산이 묶", "예산 제약이 걸린다", "calque of 'a binding budget' (묶인 예산 is money tied up)", "예산이 묶인 페이서"),
]


def _korean_sources() -> dict[str, str]:
    sources = {}
    for path in NOTEBOOKS:
        text = _markdown(path)
        headings = [line for line in text.splitlines() if line.startswith("#")]
        sources[path.name] = "\n".join(headings + _blocks(text, "ko"))
    intro = (ROOT / "book" / "intro.md").read_text()
    intro_headings = [line for line in intro.splitlines() if line.startswith("#")]
    sources["book/intro.md"] = "\n".join(intro_headings + _blocks(intro, "ko"))
    sources["book/glossary.md"] = GLOSSARY.read_text()
    sources["README.md"] = (ROOT / "README.md").read_text().split('<a id="english">')[0]
    return sources


def _discouraged(sources: dict[str, str]) -> list[str]:
    hits = []
    for name, text in sources.items():
        for pattern, preferred, why, _ in DISCOURAGED:
            for m in re.finditer(pattern, text):
                context = text[max(0, m.start() - 25): m.end() + 15].replace("\n", " ")
                hits.append(f"{name}: {m.group(0)!r} -> {preferred} ({why}) in …{context}…")
    return hits


def test_one_korean_term_per_idea():
    sources = _korean_sources()
    assert len(sources) == len(NOTEBOOKS) + 3 and all(sources.values())
    hits = _discouraged(sources)
    assert not hits, "discouraged Korean variants:\n" + "\n".join(hits)


def test_the_terminology_check_can_fail():
    """Each discouraged variant is caught when written (no pattern that can never match), and the preferred terms,
    or a look-alike such as 벗어나는지도 ("whether … too"), are not."""
    for pattern, _, _, example in DISCOURAGED:
        assert re.search(pattern, example) and _discouraged({"sample": example}), example
    assert not _discouraged({"sample": "기저율, 베이스라인, 기준점, 어텐션 맵, 주효과, 경사 하강법, 기여도, 블록·헤드, "
                                       "얼마나 벗어나는지도, 어떤 필드를 정수로 읽을지, 결과를 읽어 봅시다"})


def test_korean_sentences_are_short():
    """No Korean sentence of a chapter runs past 45 words; long ones are split."""
    long = []
    for stem, ko in _korean_chapters().items():
        ko = re.sub(r"\$\$.*?\$\$", " ", ko, flags=re.S)
        for paragraph in re.split(r"\n\s*\n|\n(?=\s*(?:[-|]|\d+\.)\s)", ko):  # paragraphs and list items
            if paragraph.lstrip().startswith("|"):
                continue  # tables
            for sentence in re.split(r"(?<=[.?!])\s+", " ".join(paragraph.split())):
                if len(sentence.split()) > 45:
                    long.append(f"{stem} ({len(sentence.split())} words): {sentence[:80]}…")
    assert not long, "\n".join(long)
