"""The study: the book's five ways to train, on one frozen split, side by side (issue 11).

:mod:`.config` (StudyConfig, the ladder's rungs per profile), :mod:`.stats` (confidence
intervals, McNemar's exact test, per-class F1), :mod:`.job` (``run(config, emit, cancel)``, the
study folder, resume), :mod:`.report` (report.html), :mod:`.demo` (``convscope demo``: the
quick study on the bundled data). Importing this package loads no TensorFlow.
"""
