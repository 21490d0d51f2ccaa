"""Draw the out-of-distribution targets in data/ood/: sketches and cartoons of the shapes world,
and in data/ood/faces/: sketches and cartoons of faces, for the faces zoo.

The shapes world has flat-shaded objects on muted gradients; these targets keep its layouts
(disks, squares, triangles, rings at 64 x 64) but change the style: pencil outlines on white
paper (sketch-*) and flat colours with thick black outlines on a flat pastel ground
(cartoon-*). The faces are drawn the same two ways: a head, eyes, brows, nose and mouth, in
three layouts (centred, smaller and to the left, turned with a wide mouth). Guided inversion
should turn them into in-distribution images with the same layout (Fig. 5 of the paper).
Made by this project; deterministic, so rerunning it rewrites the same files.

    python workflow/scripts/make_ood_targets.py [--out data/ood]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw

SIZE, SCALE = 64, 4  # drawn at 4x and downsampled, for smooth lines

# (shape, centre x, centre y, radius, colour) per object; colours only show in cartoons
SCENES = {
    "a": [("disk", 22, 24, 12, (220, 40, 40)), ("square", 44, 42, 11, (40, 70, 220))],
    "b": [("triangle", 32, 30, 16, (230, 210, 40))],
    "c": [("ring", 20, 44, 11, (40, 200, 210)), ("disk", 46, 20, 10, (210, 50, 200)),
          ("square", 46, 48, 8, (40, 180, 60))],
}
CARTOON_GROUND = {"a": (250, 230, 200), "b": (200, 225, 250), "c": (225, 245, 215)}


def _outline(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]] | tuple:
    if shape == "triangle":
        return [(cx, cy - r), (cx + 0.87 * r, cy + 0.5 * r), (cx - 0.87 * r, cy + 0.5 * r)]
    return (cx - r, cy - r, cx + r, cy + r)


def draw(scene: str, style: str) -> Image.Image:
    """One target: `style` is "sketch" or "cartoon"."""
    ground = (255, 255, 255) if style == "sketch" else CARTOON_GROUND[scene]
    image = Image.new("RGB", (SIZE * SCALE, SIZE * SCALE), ground)
    pen = ImageDraw.Draw(image)
    line = (40, 40, 40)
    width = SCALE * (1 if style == "sketch" else 2)
    for shape, cx, cy, r, colour in SCENES[scene]:
        box = _outline(shape, cx * SCALE, cy * SCALE, r * SCALE)
        fill = None if style == "sketch" else colour
        if shape == "triangle":
            pen.polygon(box, fill=fill, outline=line, width=width)
        elif shape == "square":
            pen.rectangle(box, fill=fill, outline=line, width=width)
        else:
            pen.ellipse(box, fill=fill, outline=line, width=width)
            if shape == "ring":
                inner = r * SCALE * 0.5
                hole = (cx * SCALE - inner, cy * SCALE - inner, cx * SCALE + inner,
                        cy * SCALE + inner)
                pen.ellipse(hole, fill=ground, outline=line, width=width)
    return image.resize((SIZE, SIZE), Image.LANCZOS)


# (centre x, centre y, half width, half height, eye spacing, mouth width) per face, 64 px
FACES = {"a": (32, 33, 20, 25, 9, 10), "b": (24, 36, 14, 18, 6, 6),
         "c": (35, 32, 22, 27, 10, 16)}
SKIN, HAIR = (236, 188, 150), (90, 60, 40)


def draw_face(scene: str, style: str) -> Image.Image:
    """A face target: `style` is "sketch" or "cartoon"."""
    cx, cy, rx, ry, eyes, mouth = (v * SCALE for v in FACES[scene])
    ground = (255, 255, 255) if style == "sketch" else CARTOON_GROUND[scene]
    image = Image.new("RGB", (SIZE * SCALE, SIZE * SCALE), ground)
    pen = ImageDraw.Draw(image)
    line, width = (40, 40, 40), SCALE * (1 if style == "sketch" else 2)
    cartoon = style == "cartoon"
    pen.pieslice((cx - rx * 1.1, cy - ry * 1.15, cx + rx * 1.1, cy + ry * 0.6), 180, 360,
                 fill=HAIR if cartoon else None, outline=line, width=width)
    pen.ellipse((cx - rx, cy - ry * 0.8, cx + rx, cy + ry), fill=SKIN if cartoon else None,
                outline=line, width=width)
    eye_y, r = cy - ry * 0.1, max(SCALE, rx // 7)
    for side in (-1, 1):
        ex = cx + side * eyes
        pen.ellipse((ex - 2 * r, eye_y - r, ex + 2 * r, eye_y + r),
                    fill=(255, 255, 255) if cartoon else None, outline=line, width=width)
        pen.ellipse((ex - r // 2, eye_y - r // 2, ex + r // 2, eye_y + r // 2), fill=line)
        pen.line((ex - 2 * r, eye_y - 2.2 * r, ex + 2 * r, eye_y - 2.6 * r), fill=line,
                 width=width)
    pen.line((cx, eye_y + r, cx - r, cy + ry * 0.3, cx + r // 2, cy + ry * 0.32), fill=line,
             width=width)
    mouth_y = cy + ry * 0.55
    pen.chord((cx - mouth, mouth_y - mouth * 0.4, cx + mouth, mouth_y + mouth * 0.4), 0, 180,
              fill=(200, 60, 60) if cartoon else None, outline=line, width=width)
    return image.resize((SIZE, SIZE), Image.LANCZOS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[2]
                        / "data" / "ood")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for scene in SCENES:
        for style in ("sketch", "cartoon"):
            draw(scene, style).save(args.out / f"{style}-{scene}.png", optimize=True)
    (args.out / "faces").mkdir(exist_ok=True)
    for scene in FACES:
        for style in ("sketch", "cartoon"):
            draw_face(scene, style).save(args.out / "faces" / f"{style}-{scene}.png",
                                         optimize=True)


if __name__ == "__main__":
    main()
