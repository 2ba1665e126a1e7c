"""Helpers of the Hebbian rules: the recorded pre- and post-synaptic rates, the output clamped."""

from __future__ import annotations

from torch import Tensor

from biobench.plugin_api.layers import LayerSignals, PlasticLayer


def clamped_signals(
    layers: list[PlasticLayer], signals: list[LayerSignals | None], target: Tensor
) -> list[tuple[PlasticLayer, Tensor, Tensor]]:
    """(layer, pre, post) per plastic layer, the last layer's post replaced by ``target``.

    Raises when a layer recorded nothing, when signals carry time (rate rules need
    static rates), or when the last layer's outputs do not match the target's classes.
    """
    triples = []
    for index, (layer, signal) in enumerate(zip(layers, signals, strict=True)):
        if signal is None:
            raise RuntimeError(f"layer {layer.layer_name!r} recorded no signals")
        if signal.time_major:
            raise ValueError(f"layer {layer.layer_name!r} has time-major signals; a rate rule needs rates")
        post = signal.post
        if index == len(layers) - 1:
            if post.shape != target.shape:
                raise ValueError(
                    f"cannot clamp output layer {layer.layer_name!r}: its activity has shape "
                    f"{tuple(post.shape)}, the target {tuple(target.shape)}"
                )
            post = target
        triples.append((layer, signal.pre, post))
    return triples
