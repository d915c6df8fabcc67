"""Copy the real photos bundled in scikit-image and scikit-learn into resources/samples/.

The app uses these files for prediction and Grad-CAM demos and never imports skimage or sklearn.
JPEG sources are copied byte for byte; PNG sources are saved as JPEG (quality 92).
Run: ``.venv/bin/python scripts/copy_sample_photos.py`` (needs scikit-image and scikit-learn).
"""

from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine import atomic  # noqa: E402

# output name, package, file inside the package
PHOTOS = (
    ("chelsea.jpg", "skimage", "data/chelsea.png"),
    ("coffee.jpg", "skimage", "data/coffee.png"),
    ("astronaut.jpg", "skimage", "data/astronaut.png"),
    ("rocket.jpg", "skimage", "data/rocket.jpg"),
    ("china.jpg", "sklearn", "datasets/images/china.jpg"),
    ("flower.jpg", "sklearn", "datasets/images/flower.jpg"),
)


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{name} is not installed: pip install scikit-image scikit-learn")
    return Path(list(spec.submodule_search_locations)[0])


def main() -> int:
    out = ROOT / "resources" / "samples"
    for target, package, relative in PHOTOS:
        source = package_dir(package) / relative
        data = source.read_bytes()
        if source.suffix.lower() != ".jpg":
            buffer = io.BytesIO()
            Image.open(io.BytesIO(data)).convert("RGB").save(buffer, "JPEG", quality=92, optimize=True)
            data = buffer.getvalue()
        atomic.write_bytes(out / target, data)
        print(f"{out / target}  ({len(data) // 1024} KiB, from {package}/{relative})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
