"""Darknet YOLOv3-tiny and YOLOv4-tiny cfg + weights converted once to ONNX for onnxruntime.

onnxruntime runs YOLOv3-tiny about twice as fast as OpenCV's Darknet reader on this kind of CPU
(22 ms against 41 ms at 416×416 on 2 threads), which leaves room for a second input size.
The converted file is cached: converting costs a second and ~100 MB that Python keeps afterwards.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

INPUT_NAME = "image"
# Part of the cache file's name: bump it when the conversion changes.
CONVERTER_VERSION = 1


@dataclass(frozen=True)
class YoloHead:
    """One [yolo] output: the anchors (in network pixels) its three boxes per cell start from."""

    output: str
    anchors: tuple[tuple[float, float], ...]
    classes: int
    # YOLOv4 stretches the centre's sigmoid a little so a box can centre on a cell's edge.
    scale_x_y: float = 1.0


def parse_cfg(text: str) -> list[dict[str, str]]:
    """The cfg's sections in order, each as its keys plus `_` for the section's kind."""
    sections: list[dict[str, str]] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            sections.append({"_": line.strip("[]")})
        elif sections and "=" in line:
            key, value = line.split("=", 1)
            sections[-1][key.strip()] = value.strip()
    return sections


def _ints(value: str) -> list[int]:
    return [int(part) for part in value.split(",") if part.strip()]


class _WeightReader:
    """Darknet's .weights: a short header, then float32 values in the order the layers use them."""

    def __init__(self, path: Path) -> None:
        raw = path.read_bytes()
        major, minor = np.frombuffer(raw[:8], np.int32)
        # The "images seen" counter grew from 32 to 64 bits in format 0.2.
        header = 20 if major * 10 + minor >= 2 else 16
        self._values = np.frombuffer(raw[header:], np.float32)
        self._position = 0

    def take(self, count: int) -> np.ndarray:
        chunk = self._values[self._position : self._position + count]
        if chunk.size != count:
            raise ValueError("the weights file is shorter than its cfg requires")
        self._position += count
        return chunk

    def check_used_up(self) -> None:
        if self._position != self._values.size:
            raise ValueError("the weights file does not match its cfg (values left over)")


def yolo_heads(cfg_path: Path) -> tuple[YoloHead, ...]:
    """The network's outputs: each [yolo] section reads the layer just before it."""
    heads = []
    sections = parse_cfg(cfg_path.read_text(encoding="utf-8"))
    for index, section in enumerate(sections[1:]):
        if section["_"] == "yolo":
            anchors = _ints(section["anchors"])
            mask = _ints(section["mask"])
            pairs = tuple((float(anchors[2 * i]), float(anchors[2 * i + 1])) for i in mask)
            heads.append(
                YoloHead(
                    f"layer{index - 1}",
                    pairs,
                    int(section["classes"]),
                    float(section.get("scale_x_y", 1)),
                )
            )
    return tuple(heads)


def cached_model(cfg_path: Path, weights_path: Path, key: str, folder: Path | None) -> str | bytes:
    """The ONNX model: its cached file's path in `folder`, converting it first if needed.

    `key` names the model and its source files' version (their hash). Without a (writable)
    cache folder the converted bytes are returned instead.
    """
    if folder is None:
        return convert(cfg_path, weights_path)
    target = folder / f"{key}-v{CONVERTER_VERSION}.onnx"
    if target.is_file():
        return str(target)
    log.info("Converting the local detector's model to ONNX (once) into %s", target)
    converted = convert(cfg_path, weights_path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # Written beside and renamed, so a crash never leaves half a model in the cache.
        partial = target.with_suffix(f".{os.getpid()}.partial")
        partial.write_bytes(converted)
        partial.replace(target)
    except OSError as exc:
        log.warning(
            "Cannot cache the converted model in %s (%s); converting at each start", folder, exc
        )
        return converted
    return str(target)


def convert(cfg_path: Path, weights_path: Path) -> bytes:
    """Build the ONNX graph layer by layer; batch norm is folded into the convolutions."""
    from onnx import TensorProto, helper

    sections = parse_cfg(cfg_path.read_text(encoding="utf-8"))
    reader = _WeightReader(weights_path)
    graph = _GraphBuilder(reader, int(sections[0].get("channels", 3)))
    for index, section in enumerate(sections[1:]):
        graph.add(index, section)
    reader.check_used_up()
    onnx_graph = helper.make_graph(
        graph.nodes,
        "darknet",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [1, 3, None, None])],
        [
            helper.make_tensor_value_info(h.output, TensorProto.FLOAT, [1, None, None, None])
            for h in yolo_heads(cfg_path)
        ],
        graph.initializers,
    )
    model = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", 13)])
    return model.SerializeToString()


class _GraphBuilder:
    """The ONNX nodes and weights of a Darknet network, one cfg section at a time."""

    def __init__(self, reader: _WeightReader, input_channels: int) -> None:
        self._reader = reader
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._outputs: list[str] = []  # each layer's output tensor, for [route]
        self._channels: list[int] = []
        self._current, self._current_channels = INPUT_NAME, input_channels

    def add(self, index: int, section: dict[str, str]) -> None:
        kind, name = section["_"], f"layer{index}"
        layer = {
            "convolutional": self._convolutional,
            "maxpool": self._maxpool,
            "upsample": self._upsample,
            "route": self._route,
            "yolo": self._yolo,
        }.get(kind)
        if layer is None:
            raise ValueError(f"Darknet layer [{kind}] is not supported by this converter")
        layer(index, name, section)
        self._outputs.append(name)
        self._channels.append(self._current_channels)
        self._current = name

    def _convolutional(self, index: int, name: str, section: dict[str, str]) -> None:
        from onnx import helper, numpy_helper

        filters, size = int(section["filters"]), int(section["size"])
        stride = int(section.get("stride", 1))
        reader = self._reader
        if int(section.get("batch_normalize", 0)):
            beta, gamma, mean, variance = (reader.take(filters) for _ in range(4))
            scale = gamma / (np.sqrt(variance) + 1e-6)  # Darknet's own epsilon placement
            bias = beta - mean * scale
        else:
            scale, bias = np.ones(filters, np.float32), reader.take(filters)
        kernel = reader.take(filters * self._current_channels * size * size)
        kernel = (
            kernel.reshape(filters, self._current_channels, size, size) * scale[:, None, None, None]
        )
        self.initializers += [
            numpy_helper.from_array(kernel.astype(np.float32), f"{name}.weight"),
            numpy_helper.from_array(bias.astype(np.float32), f"{name}.bias"),
        ]
        pad = (size - 1) // 2 if int(section.get("pad", 0)) else 0
        leaky = section.get("activation", "linear") == "leaky"
        conv_output = f"{name}.conv" if leaky else name
        self.nodes.append(
            helper.make_node(
                "Conv",
                [self._current, f"{name}.weight", f"{name}.bias"],
                [conv_output],
                kernel_shape=[size, size],
                strides=[stride, stride],
                pads=[pad] * 4,
            )
        )
        if leaky:
            self.nodes.append(helper.make_node("LeakyRelu", [conv_output], [name], alpha=0.1))
        self._current_channels = filters

    def _maxpool(self, index: int, name: str, section: dict[str, str]) -> None:
        from onnx import helper

        size, stride = int(section["size"]), int(section["stride"])
        # Darknet pads only the right and bottom edges, so stride 1 keeps the grid size.
        extra = size - stride
        self.nodes.append(
            helper.make_node(
                "MaxPool",
                [self._current],
                [name],
                kernel_shape=[size, size],
                strides=[stride, stride],
                pads=[0, 0, extra, extra],
            )
        )

    def _upsample(self, index: int, name: str, section: dict[str, str]) -> None:
        from onnx import helper, numpy_helper

        stride = float(section.get("stride", 2))
        scales = np.array([1, 1, stride, stride], np.float32)
        self.initializers.append(numpy_helper.from_array(scales, f"{name}.scales"))
        self.nodes.append(
            helper.make_node(
                "Resize", [self._current, "", f"{name}.scales"], [name], mode="nearest"
            )
        )

    def _route(self, index: int, name: str, section: dict[str, str]) -> None:
        from onnx import helper

        layers = [i if i >= 0 else index + i for i in _ints(section["layers"])]
        sources = [self._outputs[i] for i in layers]
        channels = sum(self._channels[i] for i in layers)
        joined = name if "groups" not in section else f"{name}.joined"
        if len(sources) == 1:
            self.nodes.append(helper.make_node("Identity", sources, [joined]))
        else:
            self.nodes.append(helper.make_node("Concat", sources, [joined], axis=1))
        if "groups" in section:
            # YOLOv4's partial route: the channels cut into `groups` equal parts, one kept.
            groups, kept = int(section["groups"]), int(section.get("group_id", 0))
            parts = [name if part == kept else f"{name}.part{part}" for part in range(groups)]
            self.nodes.append(helper.make_node("Split", [joined], parts, axis=1))
            channels //= groups
        self._current_channels = channels

    def _yolo(self, index: int, name: str, section: dict[str, str]) -> None:
        from onnx import helper

        self.nodes.append(helper.make_node("Identity", [self._current], [name]))
