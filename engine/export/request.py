"""What a format module gets to write its artifact: the model, the staging folder, the quantization.

Kept apart from ``job`` so the format modules and the job share one small type without importing
each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np


@dataclass
class ExportRequest:
    model: Any = field(repr=False)
    input_size: int
    stage: Path  # the export folder being built (published under the final name once verified)
    artifact: Path  # where the format writes its artifact inside ``stage``
    quantize: str = "none"
    # batches of 1 raw RGB image (1, S, S, 3) float32 for int8 calibration, drawn from the training split
    representative: Callable[[], Iterable[np.ndarray]] | None = None
    notes: list[str] = field(default_factory=list)  # facts the model card should carry

    def scratch(self, name: str) -> Path:
        """A working folder inside the stage; removed before publishing (see ``job``)."""
        path = self.stage / ".work" / name
        path.mkdir(parents=True, exist_ok=True)
        return path
