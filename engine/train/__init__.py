"""Training: TrainConfig (``config``), a run's life cycle (``lifecycle``: train/resume, the run
folder's files in ``rundir``, what a strategy receives in ``context``), the shared training steps
(``fitting``) and reporting callback (``callbacks``), the four strategies, one module each behind a
registry (``strategies``), the feature cache (``features``) and evaluation (``evaluate``).

Importing this package loads no TensorFlow; the functions get it when they run.
"""
