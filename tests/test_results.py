"""The benchmark figures the book quotes: ``ctrkit/results/*.json`` (written by ``benchmarks/models.py --json``) are
complete, and every figure chapters 03 to 05 quote in their prose is the committed one, in both languages."""

import json
from pathlib import Path

import pytest

from ctrkit import results

NOTEBOOKS = Path(__file__).parents[1] / "notebooks"
MODELS = ["lr", "fm", "deepfm", "dcnv2", "autoint", "transformer"]
OLD = "0.1 (2 blocks, 2 heads, FFN)"
# (chapter, results file, world, model, column, format): each figure must appear in the chapter's Korean and English prose
QUOTED = [
    *[("03", "models", 0, m, "auc", "{:.4f}") for m in ("dcnv2", "deepfm", "lightgbm")],
    *[("04", "models", w, m, "auc", "{:.4f}") for w in (0, 1) for m in ("transformer", "dcnv2", "deepfm")],
    *[("04", "models", 0, m, "train_sps", "{:,.0f}") for m in ("transformer", "dcnv2")],
    *[("04", "ablation", 0, m, "auc", "{:.4f}") for m in (OLD, "+ parallel cross (2 layers)", "+ 1 block, 1 head, no FFN")],
    *[("05", "precision", 0, m, c, f) for m in ("transformer", "transformer (bf16)")
      for c, f in (("train_sps", "{:,.0f}"), ("infer_sps", "{:,.0f}"), ("auc", "{:.4f}"))],
]


def _prose(chapter: str, lang: str) -> str:
    nb = json.loads(next(NOTEBOOKS.glob(f"{chapter}_*.ipynb")).read_text())
    text = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    return "".join(part.split("</div>")[0] for part in text.split(f'<div class="lang-{lang}">')[1:])


def _value(name: str, world: int, model: str, column: str) -> float:
    return float(results.summary(name).loc[(world, model), column])


def test_the_table_is_complete():
    table = results.summary("models")
    for world in (0, 1):
        assert set(MODELS) <= set(table.loc[world].index)
    assert (table["seeds"] == 3).all() and (table["auc"] < table["bayes_auc"]).all()
    assert set(results.summary("ablation").loc[0].index) >= {OLD, "+ parallel cross (2 layers)"}
    assert set(results.summary("precision").loc[0].index) == {"transformer", "transformer (bf16)"}
    assert {"deepfm", "autoint", "deepfm, raw numerics", "autoint, raw numerics"} <= set(results.peers().index)


def test_unknown_results_are_an_error():
    with pytest.raises(ValueError, match="no benchmark results named 'model'"):
        results.load("model")


@pytest.mark.parametrize("chapter,name,world,model,column,fmt", QUOTED)
def test_quoted_figures_are_the_committed_ones(chapter, name, world, model, column, fmt):
    figure = fmt.format(_value(name, world, model, column))
    for lang in ("ko", "en"):
        assert figure in _prose(chapter, lang), f"chapter {chapter} ({lang}) does not quote {model} {column} = {figure}"
