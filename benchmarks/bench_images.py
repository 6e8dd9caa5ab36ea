"""Benchmark: prepare_image against pysky's fixed-step thumbnail loop on a 24-megapixel photo.

Run: ``.venv/bin/python benchmarks/bench_images.py``. It builds a photo-like 6000x4000 picture (noise at
several scales over colour gradients), encodes it as PNG and as a camera-style JPEG (quality 92), and for each
input times three approaches (median of 3 runs; decoding included):

* ``prepare_image(max_bytes=1_000_000)`` from this library;
* pysky as published: keep the bytes if they are already under 976.56 KiB, else ``Image.thumbnail`` in place
  to 1536, 1408, ... 128 px (steps of 128) and re-save in the *input* format with default settings until
  under the limit;
* the fixed-step variant with JPEG output: ``thumbnail`` to 2000, 1500, 1000, 500 px, JPEG default quality
  (75), until under 1,000,000 bytes.
"""

from __future__ import annotations

import io
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image as PILImage

from pysky_async._images import Image, prepare_image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.test_images import photo_like

LIMIT = 1_000_000
PYSKY_LIMIT = math.floor(976.56 * 1024)  # pysky's MAX_ALLOWED_IMAGE_SIZE
PYSKY_SIZES = [(n * 128, n * 128) for n in range(12, 0, -1)]
FIXED_STEPS = [2000, 1500, 1000, 500]


@dataclass
class Outcome:
    encodes: int
    width: int
    height: int
    size: int
    quality: str


def pysky_published(data: bytes) -> Outcome:
    """pysky's ``Image.resize_image``: thumbnail in place through 1536..128 px, re-save in the input format."""
    image = PILImage.open(io.BytesIO(data))
    if len(data) <= PYSKY_LIMIT:
        return Outcome(0, image.width, image.height, len(data), "original")
    encodes = 0
    for box in PYSKY_SIZES:
        image.thumbnail(box)
        out = io.BytesIO()
        image.save(out, format=image.format)
        encodes += 1
        if len(out.getvalue()) < PYSKY_LIMIT:
            quality = "75 (default)" if image.format == "JPEG" else f"n/a ({image.format})"
            return Outcome(encodes, image.width, image.height, len(out.getvalue()), quality)
    return Outcome(encodes, 0, 0, 0, "failed")


def fixed_step_jpeg(data: bytes) -> Outcome:
    """The fixed-step loop with JPEG output at Pillow's default quality."""
    image = PILImage.open(io.BytesIO(data)).convert("RGB")
    encodes = 0
    for side in FIXED_STEPS:
        image.thumbnail((side, side))
        out = io.BytesIO()
        image.save(out, "JPEG")
        encodes += 1
        if len(out.getvalue()) <= LIMIT:
            return Outcome(encodes, image.width, image.height, len(out.getvalue()), "75 (default)")
    return Outcome(encodes, 0, 0, 0, "failed")


def ours(data: bytes) -> Outcome:
    prepared = prepare_image(Image(data=data), max_bytes=LIMIT)
    return Outcome(prepared.encodes, prepared.width, prepared.height, len(prepared.data), str(prepared.quality))


def timed(approach: Callable[[bytes], Outcome], data: bytes) -> tuple[float, Outcome]:
    runs = []
    outcome = None
    for _ in range(3):
        start = time.perf_counter()
        outcome = approach(data)
        runs.append(time.perf_counter() - start)
    assert outcome is not None
    return statistics.median(runs), outcome


def main() -> None:
    photo = photo_like(6000, 4000)
    inputs = {}
    for name, fmt, params in (("24 MP PNG", "PNG", {"compress_level": 1}), ("24 MP JPEG q92", "JPEG", {"quality": 92})):
        buffer = io.BytesIO()
        photo.save(buffer, fmt, **params)
        inputs[name] = buffer.getvalue()
    approaches: dict[str, Callable[[bytes], Outcome]] = {
        "prepare_image (this library)": ours,
        "pysky as published (1536→128 px, input format)": pysky_published,
        "fixed steps 2000/1500/1000/500 px, JPEG q75": fixed_step_jpeg,
    }
    print("| input | approach | seconds (median of 3) | encode attempts | final pixels | final bytes | JPEG quality |")
    print("|---|---|---:|---:|---:|---:|---|")
    verdicts = []
    for input_name, data in inputs.items():
        results = {name: timed(approach, data) for name, approach in approaches.items()}
        for name, (seconds, out) in results.items():
            pixels = f"{out.width}x{out.height} = {out.width * out.height / 1e6:.2f} MP"
            print(
                f"| {input_name} ({len(data) / 1e6:.1f} MB) | {name} | {seconds:.2f} | {out.encodes} | {pixels} "
                f"| {out.size:,} | {out.quality} |"
            )
        _, mine = results["prepare_image (this library)"]
        for name in list(approaches)[1:]:
            _, base = results[name]
            fewer = mine.encodes < base.encodes
            more = mine.width * mine.height > base.width * base.height
            verdicts.append(
                f"- {input_name} vs {name}: encodes {mine.encodes} vs {base.encodes} "
                f"({'fewer' if fewer else 'not fewer'}), pixels {mine.width * mine.height / 1e6:.2f} MP vs "
                f"{base.width * base.height / 1e6:.2f} MP ({'more' if more else 'not more'})"
            )
            verdicts[-1] += " → met" if fewer and more else " → not met"
    met = all(line.endswith("→ met") for line in verdicts)
    print()
    print(
        "target: fewer encodes and more pixels kept than the fixed-step approach — "
        + ("met" if met else "not met (details below)")
    )
    print("\n".join(verdicts))


if __name__ == "__main__":
    main()
