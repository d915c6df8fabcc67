"""Datasets: read images (``images``), scan a folder (``scan``), freeze a split (``split``),
stream it through tf.data (``pipeline``) and augment it with Keras layers (``augment``).

``images``, ``scan`` and ``split`` never import TensorFlow; ``pipeline`` and ``augment`` get it
from :mod:`engine.tf_runtime` inside their functions.
"""
