"""A tiny detection network built and exported to ONNX by the tests (no downloaded model).

It has K fixed anchor boxes in input pixels; the score of anchor k is the mean brightness of the
input inside it (in [0, 1] after the detector's 1/255 scaling). So a blank image gives no detections,
and a white patch over an anchor gives exactly that anchor's box, with its class, in the layout asked.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

INPUT_WH = (64, 64)
# (x1, y1, x2, y2) in input pixels; all inside the rows 16..48 a 2:1 letterboxed image covers.
ANCHORS_XYXY = np.array([[4, 20, 20, 44], [28, 18, 40, 40], [44, 24, 60, 46]], np.float32)
YOLO_CLASSES = [0, 2, 0]   # COCO-style ids as YOLO numbers them (0 = person)
SSD_CLASSES = [1, 3, 1]    # ... and as TF SSD models do (1 = person, 0 = background)
N_CLASSES = 3


class TinyDetector(torch.nn.Module):
    def __init__(self, layout: str):
        super().__init__()
        self.layout = layout

    def forward(self, x):  # x: (1, 3, H, W) float
        grey = x.mean(dim=1)
        scores = torch.stack([grey[:, y1:y2, x1:x2].mean(dim=(1, 2))
                              for x1, y1, x2, y2 in ANCHORS_XYXY.astype(int).tolist()], dim=1)  # (1, K)
        k = len(ANCHORS_XYXY)
        boxes = torch.from_numpy(ANCHORS_XYXY)
        w, h = INPUT_WH
        if self.layout == "ssd":
            norm = boxes / torch.tensor([w, h, w, h], dtype=torch.float32)
            head = torch.stack([torch.zeros(k), torch.tensor(SSD_CLASSES, dtype=torch.float32)], dim=1)
            rows = torch.cat([head[None], scores[..., None], norm[None]], dim=2)  # (1, K, 7)
            return rows[:, None]                                                  # (1, 1, K, 7)
        cxcywh = torch.cat([(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]], dim=1)
        onehot = torch.nn.functional.one_hot(torch.tensor(YOLO_CLASSES), N_CLASSES).float()  # (K, C)
        if self.layout == "yolo5":
            return torch.cat([cxcywh[None], scores[..., None], onehot[None]], dim=2)  # (1, K, 5 + C)
        rows = torch.cat([cxcywh[None], onehot[None] * scores[..., None]], dim=2)   # (1, K, 4 + C)
        return rows.transpose(1, 2)                                                  # (1, 4 + C, K)


def export(layout: str, path: Path) -> Path:
    """Exports the tiny model with the given output layout to ``path`` (ONNX) and returns it."""
    w, h = INPUT_WH
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(TinyDetector(layout), torch.zeros(1, 3, h, w), str(path), dynamo=False,
                          input_names=["images"], output_names=["out"])
    return path


def paint(image_wh: tuple[int, int], anchors: list[int], input_to_image) -> np.ndarray:
    """A black (H, W, 3) uint8 BGR image, white where the given anchors fall once mapped to the image.

    ``input_to_image`` maps (N, 4) xyxy input pixels to image pixels.
    """
    w, h = image_wh
    image = np.zeros((h, w, 3), np.uint8)
    for k in anchors:
        x1, y1, x2, y2 = np.round(input_to_image(ANCHORS_XYXY[k:k + 1])[0]).astype(int)
        image[max(y1 - 2, 0):y2 + 2, max(x1 - 2, 0):x2 + 2] = 255
    return image
