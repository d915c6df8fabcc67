"""Class activation maps: Grad-CAM, Grad-CAM++, Score-CAM and a plain saliency map.

:mod:`~engine.inspect.cam.methods` holds the family (one base owns the passes, each variant supplies
its channel weights), :mod:`~engine.inspect.cam.targets` what is differentiated (logit or
probability of one output's class), :mod:`~engine.inspect.cam.compute` one map of one image and the
overlay. The names below are the package's public API.
"""

from engine.inspect.cam.compute import (
    CamResult,
    cam_layer,
    check_class,
    compute_cam,
    default_cam_layer,
    overlay,
    predict_scores,
    resize_heatmap,
    scale_map,
)
from engine.inspect.cam.methods import METHODS, CamMethod, build_passes, get_method
from engine.inspect.cam.targets import TARGETS, BinaryTarget, ClassTarget, class_count, softmax_head

__all__ = [
    "METHODS", "TARGETS", "BinaryTarget", "CamMethod", "CamResult", "ClassTarget", "build_passes", "cam_layer",
    "check_class", "class_count", "compute_cam", "default_cam_layer", "get_method", "overlay",
    "predict_scores", "resize_heatmap", "scale_map", "softmax_head",
]
