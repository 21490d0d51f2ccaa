"""Part masks of generated faces, for dissecting the faces dictionary (its labels, after
Network Dissection; `mining.dissection`).

A face's five landmarks (both eyes, nose tip, both mouth corners) and its box come from
MTCNN's O-Net, one of the faces zoo's models, run on the whole image: its landmarks are
fractions of the image's width and height, its box the image's corners moved by its
regression offsets (fractions too, as MTCNN applies them). With d the inter-ocular distance:

- `eye`: a disc of radius EYE_RADIUS d at each eye; `nose`: a disc of NOSE_RADIUS d at the tip;
- `mouth`: a capsule of radius MOUTH_RADIUS d around the segment between the corners;
- `skin`: pixels inside the face box whose colour lies in the skin range of Chai and Ngan
  (1999) in YCrCb (Cr 133-173, Cb 77-127; ITU-R BT.601, as JPEG), less eyes and mouth;
- `hair`: pixels outside that colour range, above the eyes' discs, inside the face box
  enlarged ENLARGE times about its centre;
- `background`: pixels outside the face box, less hair. (Outside the enlarged box alone would
  leave almost nothing: the faces zoo's generator fills its frame, so the enlarged box covers
  most of the image.)

Images whose O-Net face probability is below MIN_PROB are left out (and counted). Pixel
(i, j) is the point (j + 0.5, i + 0.5) in the image's coordinates.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from PIL import Image, ImageDraw

from .images import to_uint8

EYE_RADIUS, NOSE_RADIUS, MOUTH_RADIUS = 0.25, 0.25, 0.2  # of the inter-ocular distance
ENLARGE = 1.5
MIN_PROB = 0.9
CR_RANGE, CB_RANGE = (133, 173), (77, 127)
PARTS = ("eye", "nose", "mouth", "skin", "hair", "background")
COLOURS = {"eye": (0, 160, 255), "nose": (255, 220, 0), "mouth": (255, 40, 40),
           "skin": (255, 170, 120), "hair": (140, 70, 20), "background": (60, 60, 60)}


class Faces(NamedTuple):
    """O-Net's reading of n images of size w x h: face probability [n], box [n, 4] (x0, y0,
    x1, y1) and landmarks [n, 5, 2] (x, y) in pixels."""

    prob: np.ndarray
    box: np.ndarray
    landmarks: np.ndarray


@torch.no_grad()
def read_faces(onet, images: torch.Tensor) -> Faces:
    """O-Net (a loaded (spec, model)) on images [n, 3, h, w] in [-1, 1], each whole."""
    spec, model = onet
    out = model(spec.preprocess(images))
    h, w = images.shape[-2:]
    scale = np.array([w, h, w, h], dtype=np.float64)
    reg = out.box.double().cpu().numpy()
    box = np.array([0, 0, w, h], dtype=np.float64) + reg * scale
    points = out.landmarks.double().cpu().numpy()  # five x, then five y, as fractions
    landmarks = np.stack([points[:, :5] * w, points[:, 5:] * h], axis=-1)
    return Faces(out.prob.double().cpu().numpy(), box.clip(0, scale), landmarks)


def skin_colour(images: np.ndarray) -> np.ndarray:
    """uint8 [n, h, w, 3] RGB -> bool [n, h, w]: pixels in Chai and Ngan's YCrCb skin range."""
    r, g, b = (images[..., c].astype(np.float64) for c in range(3))
    cr = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b
    cb = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
    return ((cr >= CR_RANGE[0]) & (cr <= CR_RANGE[1]) & (cb >= CB_RANGE[0])
            & (cb <= CB_RANGE[1]))


def _segment_distance(x: np.ndarray, y: np.ndarray, a: np.ndarray, b: np.ndarray
                      ) -> np.ndarray:
    """Distance of points (x, y) [h, w] from the segment a-b."""
    d = b - a
    t = ((x - a[0]) * d[0] + (y - a[1]) * d[1]) / max(float(d @ d), 1e-12)
    t = t.clip(0, 1)
    return np.hypot(x - a[0] - t * d[0], y - a[1] - t * d[1])


def part_masks(images: np.ndarray, faces: Faces) -> dict[str, np.ndarray]:
    """The part masks bool [n, h, w] of uint8 images [n, h, w, 3] and their faces."""
    n, h, w = images.shape[:3]
    y, x = np.mgrid[0:h, 0:w] + 0.5
    skin_px = skin_colour(images)
    out = {part: np.zeros((n, h, w), dtype=bool) for part in PARTS}
    for i in range(n):
        le, re, nose, ml, mr = faces.landmarks[i]
        d = float(np.hypot(*(re - le)))
        out["eye"][i] = ((np.hypot(x - le[0], y - le[1]) <= EYE_RADIUS * d)
                         | (np.hypot(x - re[0], y - re[1]) <= EYE_RADIUS * d))
        out["nose"][i] = np.hypot(x - nose[0], y - nose[1]) <= NOSE_RADIUS * d
        out["mouth"][i] = _segment_distance(x, y, ml, mr) <= MOUTH_RADIUS * d
        x0, y0, x1, y1 = faces.box[i]
        inside = (x >= x0) & (x < x1) & (y >= y0) & (y < y1)
        cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
        enlarged = (np.abs(x - cx) < ENLARGE * hw) & (np.abs(y - cy) < ENLARGE * hh)
        out["skin"][i] = inside & skin_px[i] & ~out["eye"][i] & ~out["mouth"][i]
        above = y < min(le[1], re[1]) - EYE_RADIUS * d
        out["hair"][i] = enlarged & ~skin_px[i] & above
        out["background"][i] = ~inside & ~out["hair"][i]
    return out


def face_labels(onet, images: torch.Tensor, min_prob: float = MIN_PROB
                ) -> tuple[np.ndarray, dict[str, np.ndarray], Faces]:
    """(kept bool [n], part masks of the kept images, the faces of all n) of images
    [n, 3, h, w] in [-1, 1]: the images where O-Net finds a face with `min_prob`."""
    faces = read_faces(onet, images)
    kept = faces.prob >= min_prob
    found = Faces(*(a[kept] for a in faces))
    return kept, part_masks(to_uint8(images)[kept], found), faces


def parts_sheet(images: np.ndarray, faces: Faces, masks: dict[str, np.ndarray],
                scale: int = 4) -> Image.Image:
    """Rows of (image with its box and landmarks, its part masks in colour), for a person to
    check the masks; images uint8 [n, h, w, 3] and their faces and masks."""
    n, h, w = images.shape[:3]
    sheet = Image.new("RGB", (2 * w * scale, n * h * scale), "white")
    for i in range(n):
        photo = Image.fromarray(images[i]).resize((w * scale, h * scale), Image.NEAREST)
        draw = ImageDraw.Draw(photo)
        draw.rectangle(list(faces.box[i] * scale), outline=(0, 255, 0), width=2)
        for px, py in faces.landmarks[i] * scale:
            draw.ellipse([px - 3, py - 3, px + 3, py + 3], fill=(255, 0, 255))
        parts = np.zeros((h, w, 3), dtype=np.uint8)
        for part in reversed(PARTS):  # the small parts over skin, hair and background
            parts[masks[part][i]] = COLOURS[part]
        sheet.paste(photo, (0, i * h * scale))
        sheet.paste(Image.fromarray(parts).resize((w * scale, h * scale), Image.NEAREST),
                    (w * scale, i * h * scale))
    return sheet
