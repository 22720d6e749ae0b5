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
