"""Dialogs opened from the tabs (each in its own module)."""
