"""Models ConvScope builds (``presets``) and loads (``loading``: .keras files, run folders, bases).

Nothing is imported here, so ``import engine.models`` stays free of TensorFlow.
"""
