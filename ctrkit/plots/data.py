"""Figures of chapter 01 (data exploration)."""

__all__: list[str] = []
