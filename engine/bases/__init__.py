"""Pretrained convolutional bases: a registry that can be read without importing TensorFlow."""

from engine.bases.registry import BaseSpec, WeightsStatus, all_bases, get_base, register_base

__all__ = ["BaseSpec", "WeightsStatus", "all_bases", "get_base", "register_base"]
