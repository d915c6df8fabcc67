"""Reusable widgets (plots, image views, pickers)."""
