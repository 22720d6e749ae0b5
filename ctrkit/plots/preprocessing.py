"""Figures of chapter 02 (preprocessing)."""

__all__: list[str] = []
