"""Training: TrainConfig (``config``), run folders (``rundir``), the reporting callback
(``callbacks``), the feature cache (``features``), the four strategies (``strategies``),
evaluation (``evaluate``) and the bundled demo (``demo``).

Importing this package loads no TensorFlow; the functions get it when they run.
"""
