"""EfficientNet-Lite1 and Lite2: the same converter as Lite0, their block lists, ImageNet predictions,
the registry entries, and the restricted reader refusing hostile files in their place."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from engine.bases import efficientnet_lite as eff
from engine.bases import torch_legacy
from engine.errors import ModelFileError

SAMPLES = Path(__file__).resolve().parent.parent / "resources" / "samples"
VARIANTS = [pytest.param(eff.LITE1, id="lite1"), pytest.param(eff.LITE2, id="lite2")]
CAT_CLASSES = {281, 282, 283, 284, 285}


def _needs(variant):
    path = eff.package_weights_path(variant)
    if path is None or not path.is_file():
        pytest.skip(f"{variant.package_dist} not installed")
    return path


def _photo(name: str, size: int):
    from engine.data.images import read_rgb
    from engine.predict import center_crop

    return center_crop(read_rgb(SAMPLES / name), size)[None].astype(np.float32)


@pytest.mark.parametrize("variant", VARIANTS)
def test_block_list_uses_every_weight_of_the_file_once(variant):
    state = torch_legacy.load_state_dict(_needs(variant), expected_sha256=variant.sha256)
    mapped = [key for pairs in eff.weight_map(variant).values() for key, _ in pairs]
    assert len(mapped) == len(set(mapped))
    assert set(mapped) == {k for k in state if not k.endswith("num_batches_tracked")}
    model = eff.build_architecture(include_top=True, variant=variant)
    assert model.name == variant.model_name and model.input.shape[1] == variant.input_size
    assert model.count_params() == sum(v.size for k, v in state.items() if not k.endswith("num_batches_tracked"))
    assert len(eff.block_prefixes(variant)) == 21


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_converted_variant_recognises_the_cat_and_the_coffee(variant):
    _needs(variant)
    model = eff.convert(variant=variant)
    cat = np.asarray(model(_photo("chelsea.jpg", variant.input_size), training=False))[0]
    assert set(np.argsort(cat)[::-1][:3].tolist()) <= CAT_CLASSES
    coffee = np.asarray(model(_photo("coffee.jpg", variant.input_size), training=False))[0]
    assert int(np.argmax(coffee)) == 967  # espresso


class _RunsCommand:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


@pytest.mark.parametrize("variant", VARIANTS)
def test_hostile_file_in_place_of_the_weights_never_runs(variant, tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / variant.pth_name
    with open(evil, "wb") as handle:
        for part in (torch_legacy.MAGIC_NUMBER, torch_legacy.PROTOCOL_VERSION, {"little_endian": True},
                     {"_conv_stem.weight": _RunsCommand(f"touch {marker}")}, []):
            pickle.dump(part, handle, protocol=2)
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        eff.convert(evil, variant=variant)
    own_checksum = hashlib.sha256(evil.read_bytes()).hexdigest()  # past the checksum: the reader refuses
    with pytest.raises(ModelFileError, match="refused"):
        eff.convert(evil, expected_sha256=own_checksum, variant=variant)
    assert not marker.exists()


def test_bases_lists_the_lite_family_at_their_own_sizes(capsys):
    from engine.cli import main

    assert main(["bases", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    for name, size in (("efficientnet-lite0", 224), ("efficientnet-lite1", 240), ("efficientnet-lite2", 260)):
        assert rows[name]["input_size"] == size and rows[name]["imagenet_head"] is True
        assert rows[name]["gradcam_layer"] == "top_activation"
