"""Prepare images for upload: validate, orient, strip metadata, fit under Bluesky's byte limit.

``prepare_image`` is synchronous and CPU-bound: run it in a worker thread
(``await anyio.to_thread.run_sync(prepare_image, image)``). Pillow is imported inside the functions,
so ``import pysky_async`` stays fast.

What it does, in order:

* Reads the file (or bytes) and decodes every pixel, so a missing file, a file that is not an image
  and a truncated or corrupt image all raise ``InvalidImage`` before anything is uploaded. Inputs:
  JPEG (and MPO), PNG, WebP, GIF, BMP, TIFF, AVIF when Pillow has it. Pictures over 100 megapixels
  are refused (decompression-bomb guard; a 24 MP camera photo is fine). Pillow's
  ``LOAD_TRUNCATED_IMAGES`` is never changed here.
* Applies the EXIF orientation, then always re-encodes, so EXIF (GPS included), XMP, comments and
  PNG text never reach the server. ``width``/``height`` are the displayed (rotated) size.
* Colour: an embedded ICC profile is used to convert the pixels to sRGB, then dropped; the output is
  untagged sRGB, which is what browsers assume. An unreadable profile is ignored. CMYK, 16-bit,
  palette and bilevel images become 8-bit RGB or grey (16-bit values are scaled, not clipped).
* Format: no transparency → JPEG. Real transparency (some alpha below 255) → lossless PNG if it
  fits, else a PNG scaled by no less than 0.75 per side, else lossy WebP with alpha. Static GIFs
  are ordinary images. An animated GIF is kept as it is, frame for frame, with only its comment and
  application blocks (XMP, ICC) removed; if that is over ``max_bytes`` it is refused, because
  Bluesky plays GIFs as video: post it as a video. Other animations (APNG, WebP) keep frame one.
* Fitting, pixels first and then quality: JPEG/WebP quality is searched between 70 and 95. A small
  picture is tried at 95 first. Otherwise quality 70 at full size is tried; if that is too big the
  scale is estimated from the byte ratio (bytes grow like pixels**k, k fitted from the attempts,
  0.85 at first), the image resized with LANCZOS from the full-size pixels, and tried again, at most
  four times. Then quality is raised by interpolating log(size) between known points. Each
  attempt is one encode, counted in ``PreparedImage.encodes`` (usually 2-6).
* If nothing fits, ``ImageTooLarge`` says how close it came.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from ._exceptions import ImageTooLarge, InvalidImage, InvalidInput
from ._optional import require_media

if TYPE_CHECKING:
    from PIL import Image as PILImage

__all__ = ["Image", "ImageTooLarge", "InvalidImage", "PreparedImage", "prepare_image"]

MAX_PIXELS = 100_000_000
"""Images with more pixels than this are refused as possible decompression bombs."""

_MAX_ANIMATION_PIXELS = 1_000_000_000  # all frames of an animated GIF together
_INPUT_FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "GIF", "BMP", "TIFF", "AVIF")
_Q_MIN, _Q_MAX = 70, 95
_Q_SLOPE = 0.04  # prior: ln(bytes) grows ~0.04 per quality point between 70 and 95
_AIM = 0.93  # aim a little under max_bytes when predicting a scale or quality
_K_PRIOR = 0.85  # bytes ~ pixels**k; a downscaled photo keeps more detail per pixel, so k is a little under 1
_GOOD_ENOUGH = 0.85  # a scaled candidate filling this much of the budget ends the scale search
_SCALE_ROUNDS = 4
_QUALITY_PROBES = 3
_MIN_LONG_SIDE = 128  # never shrink below this (or the original, if smaller) to make bytes fit
_BYTES_PER_PIXEL_Q_MAX = 0.3  # images needing less than this at full size try quality 95 first
_PNG_MIN_SCALE = 0.75
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "La", "RGBa"})


@dataclass(frozen=True)
class Image:
    """An image to attach to a post: give exactly one of ``filename`` or ``data``.

    Attributes:
        filename: path of an image file.
        data: the bytes of an image file.
        alt: the alt text shown to screen-reader users.
    """

    filename: str | os.PathLike[str] | None = None
    data: bytes | None = None
    alt: str = ""

    def __post_init__(self) -> None:
        require_media("PIL", "Image")
        if (self.filename is None) == (self.data is None):
            which = "neither" if self.filename is None else "both"
            raise InvalidImage(f"Image needs exactly one of filename= or data=, got {which}")
        if self.data is not None:
            if not isinstance(self.data, bytes | bytearray | memoryview):
                raise InvalidImage(f"Image data= must be bytes, got {type(self.data).__name__}")
            object.__setattr__(self, "data", bytes(self.data))
            if not self.data:
                raise InvalidImage("image data is empty: pass the bytes of a JPEG, PNG, WebP or GIF file")
        elif not os.fspath(self.filename or ""):
            raise InvalidImage("Image filename= is empty: pass the path of an image file")
        if not isinstance(self.alt, str):
            raise InvalidImage(f"Image alt= must be a str, got {type(self.alt).__name__}")

    @property
    def label(self) -> str:
        """How error messages name this image: the file name, or ``image data``."""
        if self.filename is None:
            return "image data"
        return f"image file {os.fspath(self.filename)!r}"


@dataclass(frozen=True)
class PreparedImage:
    """Bytes ready to upload as a blob, and what was done to make them.

    Attributes:
        data: the bytes to upload (no EXIF, XMP or comments).
        mimetype: ``image/jpeg``, ``image/png``, ``image/webp`` or ``image/gif``.
        width: final width in pixels, after EXIF orientation and any scaling.
        height: final height in pixels.
        encodes: encode attempts it took (the GIF clean-up counts as one).
        original_width: width after EXIF orientation, before scaling.
        original_height: height after EXIF orientation, before scaling.
        quality: the JPEG/WebP quality used, or None for PNG and GIF.
    """

    data: bytes
    mimetype: str
    width: int
    height: int
    encodes: int
    original_width: int
    original_height: int
    quality: int | None = None

    @property
    def aspect_ratio(self) -> dict[str, int]:
        """The ``aspectRatio`` object of an ``app.bsky.embed.images#image``."""
        return {"width": self.width, "height": self.height}


@dataclass
class _Candidate:
    data: bytes
    frame: PILImage.Image
    quality: int | None


@dataclass
class _Counter:
    encodes: int = 0


def prepare_image(image: Image, *, max_bytes: int = 1_000_000) -> PreparedImage:
    """Decode, orient, strip and re-encode ``image`` so that it is at most ``max_bytes`` long.

    Args:
        image: the image to prepare.
        max_bytes: the largest acceptable output (Bluesky's image blob limit by default).

    Returns:
        The prepared bytes with their MIME type and final dimensions.

    Raises:
        InvalidImage: the file is missing, not an image, corrupt or has too many pixels.
        ImageTooLarge: it cannot be made to fit under ``max_bytes`` (an animated GIF over the limit).
    """
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
        raise InvalidInput(f"max_bytes must be a positive int, got {max_bytes!r}")
    label = image.label
    with ExitStack() as stack:
        fp = stack.enter_context(_open_source(image, label))
        src = stack.enter_context(_open_image(fp, label))
        if src.format == "GIF" and getattr(src, "is_animated", False):
            fp.seek(0)
            return _prepare_animated_gif(fp.read(), label, max_bytes)
        pixels = _decode(src, label)
    counter = _Counter()
    if pixels.mode == "RGBA":
        best = _fit_transparent(pixels, max_bytes, counter, label)
    else:
        best = _fit_lossy(pixels, _encode_jpeg, max_bytes, counter, label, "JPEG")
    mimetype = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}[_format_of(best.data)]
    return PreparedImage(
        data=best.data,
        mimetype=mimetype,
        width=best.frame.width,
        height=best.frame.height,
        encodes=counter.encodes,
        original_width=pixels.width,
        original_height=pixels.height,
        quality=best.quality,
    )


# -- reading and decoding -------------------------------------------------------------------------------------------


@contextmanager
def _open_source(image: Image, label: str) -> Iterator[IO[bytes]]:
    if image.data is not None:
        yield io.BytesIO(image.data)
        return
    assert image.filename is not None
    try:
        fp = open(image.filename, "rb")
    except FileNotFoundError as exc:
        raise InvalidImage(f"{label} not found: check the path") from exc
    except IsADirectoryError as exc:
        raise InvalidImage(f"{label} is a directory, not an image file") from exc
    except OSError as exc:
        raise InvalidImage(f"{label} cannot be read ({exc.strerror}): check that it exists and is readable") from exc
    with fp:
        yield fp


@contextmanager
def _open_image(fp: IO[bytes], label: str) -> Iterator[PILImage.Image]:
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    PILImage.init()
    formats = [name for name in _INPUT_FORMATS if name in PILImage.OPEN]
    try:
        # Pillow warns from ~89 MP and raises from ~179 MP; MAX_PIXELS below is the limit that applies here.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            img = PILImage.open(fp, formats=formats)
    except PILImage.DecompressionBombError as exc:
        raise InvalidImage(f"{label} has far too many pixels ({exc}): scale it down before posting") from exc
    except UnidentifiedImageError as exc:
        raise InvalidImage(
            f"{label} is not an image in a supported format: use a JPEG, PNG, WebP or GIF file "
            "(convert HEIC or RAW photos to JPEG first)"
        ) from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise InvalidImage(f"{label} is truncated or corrupt ({exc}): re-export or re-download it") from exc
    with img:  # closes only the file: the decoded pixels stay usable
        if img.width * img.height > MAX_PIXELS:
            raise InvalidImage(
                f"{label} is {img.width}x{img.height} ({img.width * img.height / 1e6:.0f} megapixels), over the "
                f"{MAX_PIXELS // 1_000_000} MP limit: scale it down before posting"
            )
        yield img


def _decode(src: PILImage.Image, label: str) -> PILImage.Image:
    """Fully decode ``src`` and return upright 8-bit sRGB pixels in mode L, RGB or RGBA, with no metadata."""
    from PIL import ImageOps

    try:
        src.load()
        img = src
        try:
            if src.getexif().get(0x0112, 1) in range(2, 9):
                img = ImageOps.exif_transpose(src)
        except Exception:  # a broken EXIF block: keep the pixels as stored
            img = src
        return _normalise(img)
    except InvalidImage:
        raise
    except Exception as exc:  # any decoder failure means the file is unusable
        raise InvalidImage(f"{label} is truncated or corrupt ({exc}): re-export or re-download it") from exc


def _normalise(img: PILImage.Image) -> PILImage.Image:
    icc = img.info.get("icc_profile")
    transparent = "transparency" in img.info or img.mode in _ALPHA_MODES
    if img.mode.startswith("I") or img.mode == "F":
        img = _grey_to_8bit(img)
    target = "RGBA" if transparent else "L" if img.mode in ("L", "1") else "RGB"
    if img.mode not in ("RGB", "RGBA", "CMYK", target):
        img = img.convert(target)
    converted = _to_srgb(img, icc, target) if icc and img.mode in ("RGB", "RGBA", "CMYK") else None
    img = converted if converted is not None else img.convert(target) if img.mode != target else img
    if img.mode == "RGBA" and img.getchannel("A").getextrema()[0] == 255:
        img = img.convert("RGB")  # an alpha channel that is opaque everywhere
    img.info = {}  # encoders copy some of info (ICC, comments, transparency): start clean
    return img


def _grey_to_8bit(img: PILImage.Image) -> PILImage.Image:
    if img.mode == "F":
        return img.convert("L")
    wide = img.convert("I")
    high = wide.getextrema()[1]
    assert isinstance(high, int)
    if high <= 255:
        return wide.convert("L")
    divisor = 257.0 if high <= 65535 else high / 255
    return wide.point(lambda value: value / divisor).convert("L")


def _to_srgb(img: PILImage.Image, icc: bytes, mode: str) -> PILImage.Image | None:
    """Convert to sRGB with the embedded profile; None if it is sRGB already or unusable."""
    from PIL import ImageCms

    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if "srgb" in ImageCms.getProfileDescription(profile).lower().replace(" ", ""):
            return None
        srgb = ImageCms.createProfile("sRGB")
        return ImageCms.profileToProfile(
            img, profile, srgb, renderingIntent=ImageCms.Intent.PERCEPTUAL, outputMode=mode
        )
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None


# -- fitting under max_bytes ----------------------------------------------------------------------------------------


def _encode_jpeg(img: PILImage.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, "JPEG", quality=quality, optimize=True)
    return buffer.getvalue()


def _encode_webp(img: PILImage.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, "WEBP", quality=quality, method=4)
    return buffer.getvalue()


def _encode_png(img: PILImage.Image, *, optimize: bool) -> bytes:
    buffer = io.BytesIO()
    if optimize:
        img.save(buffer, "PNG", optimize=True)
    else:
        img.save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def _format_of(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "PNG"
    if data[8:12] == b"WEBP":
        return "WEBP"
    return "JPEG"


def _resize(img: PILImage.Image, scale: float) -> PILImage.Image:
    from PIL import Image as PILImage

    if scale >= 1.0:
        return img
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(size, PILImage.Resampling.LANCZOS, reducing_gap=3.0)


def _fit_lossy(
    full: PILImage.Image,
    encode: Callable[[PILImage.Image, int], bytes],
    max_bytes: int,
    counter: _Counter,
    label: str,
    codec: str,
) -> _Candidate:
    """Largest scale that fits at quality 70, then the highest quality that fits at that scale."""
    full_pixels = full.width * full.height
    smallest_side = min(_MIN_LONG_SIDE, max(full.size))
    high: tuple[int, int] | None = None  # (quality, bytes) known not to fit at the chosen scale
    if full_pixels * _BYTES_PER_PIXEL_Q_MAX <= max_bytes:
        data = encode(full, _Q_MAX)
        counter.encodes += 1
        if len(data) <= max_bytes:
            return _Candidate(data, full, _Q_MAX)
        high = (_Q_MAX, len(data))

    fit: tuple[float, _Candidate] | None = None
    too_big_scale: float | None = None
    points: list[tuple[float, int]] = []  # (pixels, bytes) at quality 70
    scale: float | None = 1.0
    smallest = (full.width, full.height, 0)
    for _ in range(_SCALE_ROUNDS):
        assert scale is not None
        frame = _resize(full, scale)
        if max(frame.size) < smallest_side:
            break
        data = encode(frame, _Q_MIN)
        counter.encodes += 1
        smallest = (frame.width, frame.height, len(data))
        points.append((frame.width * frame.height, len(data)))
        if len(data) <= max_bytes:
            fit = (scale, _Candidate(data, frame, _Q_MIN))
            if scale == 1.0 or len(data) >= _GOOD_ENOUGH * max_bytes:
                break
        else:
            too_big_scale = scale
        scale = _next_scale(points, full_pixels, max_bytes, fit[0] if fit else None, too_big_scale)
        if scale is None:
            break
    if fit is None:
        width, height, size = smallest
        raise ImageTooLarge(
            f"{label} cannot be made to fit in {max_bytes} bytes: even at {width}x{height} pixels and {codec} "
            f"quality {_Q_MIN} it takes {size} bytes; raise max_bytes or crop the image"
        )
    scale, best = fit
    if scale < 1.0:
        high = None  # the quality-95 probe was at full size
    return _raise_quality(best, high, encode, max_bytes, counter)


def _next_scale(
    points: list[tuple[float, int]], full_pixels: int, max_bytes: int, fit: float | None, too_big: float | None
) -> float | None:
    """Predict the scale whose quality-70 encoding fills the budget: bytes ~ a * pixels**k."""
    pixels, size = points[-1]
    k = _K_PRIOR
    if len(points) >= 2 and points[-2][0] != pixels and points[-2][1] != size:
        k = math.log(size / points[-2][1]) / math.log(pixels / points[-2][0])
        k = min(1.3, max(0.5, k))
    scale = math.sqrt(pixels * (_AIM * max_bytes / size) ** (1 / k) / full_pixels)
    low, high = fit or 0.0, too_big or 1.0
    if high - low < 0.02 * high:
        return None  # already within 2 % of the best scale
    if not low < scale < high:
        scale = (low + high) / 2  # the prediction contradicts what was measured: bisect
    return scale


def _raise_quality(
    best: _Candidate,
    high: tuple[int, int] | None,
    encode: Callable[[PILImage.Image, int], bytes],
    max_bytes: int,
    counter: _Counter,
) -> _Candidate:
    """Raise the quality of a fitting candidate by interpolating ln(bytes) against quality."""
    assert best.quality is not None
    low = (best.quality, len(best.data))
    target = math.log(_AIM * max_bytes)
    for _ in range(_QUALITY_PROBES):
        if high is not None:
            if high[0] - low[0] <= 2:
                break
            slope = (math.log(high[1]) - math.log(low[1])) / (high[0] - low[0])
            guess = low[0] + (target - math.log(low[1])) / slope
            quality = min(high[0] - 1, max(low[0] + 1, math.floor(guess)))
        else:
            guess = low[0] + (target - math.log(low[1])) / _Q_SLOPE
            if guess < low[0] + 2 or low[0] >= _Q_MAX:
                break
            quality = min(_Q_MAX, math.floor(guess))
        data = encode(best.frame, quality)
        counter.encodes += 1
        if len(data) <= max_bytes:
            best, low = _Candidate(data, best.frame, quality), (quality, len(data))
            if quality == _Q_MAX:
                break
        else:
            high = (quality, len(data))
    return best


def _fit_transparent(full: PILImage.Image, max_bytes: int, counter: _Counter, label: str) -> _Candidate:
    """Lossless PNG, then PNG scaled a little, then lossy WebP with alpha."""
    from PIL import features

    data = _encode_png(full, optimize=False)
    counter.encodes += 1
    if len(data) <= max_bytes:
        return _Candidate(data, full, None)
    if len(data) <= 1.5 * max_bytes:
        data = _encode_png(full, optimize=True)
        counter.encodes += 1
        if len(data) <= max_bytes:
            return _Candidate(data, full, None)
    scale = math.sqrt(_AIM * max_bytes / len(data))
    if scale >= _PNG_MIN_SCALE:
        frame = _resize(full, scale)
        data = _encode_png(frame, optimize=True)
        counter.encodes += 1
        if len(data) <= max_bytes:
            return _Candidate(data, frame, None)
    if not features.check("webp"):
        raise ImageTooLarge(
            f"{label} has transparency and is {len(data)} bytes as PNG, over {max_bytes}, and this Pillow cannot "
            "write WebP: install a Pillow with WebP support, or remove the transparency"
        )
    return _fit_lossy(full, _encode_webp, max_bytes, counter, label, "WebP")


# -- animated GIF -----------------------------------------------------------------------------------------------------


def _prepare_animated_gif(raw: bytes, label: str, max_bytes: int) -> PreparedImage:
    from PIL import Image as PILImage

    data = _strip_gif(raw, label)
    if len(data) > max_bytes:
        raise ImageTooLarge(
            f"{label} is an animated GIF of {len(data)} bytes, over the {max_bytes}-byte limit for images; "
            "animated GIFs over the limit are refused: Bluesky plays GIFs as video, so convert it to MP4 "
            "and post it as a video instead"
        )
    try:
        with PILImage.open(io.BytesIO(data), formats=["GIF"]) as gif:
            width, height, total = gif.width, gif.height, 0
            frames = getattr(gif, "n_frames", 1)
            for index in range(frames):
                gif.seek(index)
                gif.load()
                total += width * height
                if total > _MAX_ANIMATION_PIXELS:
                    raise InvalidImage(f"{label} has too many frames to decode safely: post it as a video instead")
    except InvalidImage:
        raise
    except Exception as exc:
        raise InvalidImage(f"{label} is a truncated or corrupt GIF ({exc}): re-export or re-download it") from exc
    return PreparedImage(data, "image/gif", width, height, 1, width, height, None)


_KEPT_APPLICATIONS = (b"\x0bNETSCAPE2.0", b"\x0bANIMEXTS1.0")  # the loop count


def _strip_gif(data: bytes, label: str) -> bytes:
    """Copy a GIF block by block, dropping comments and application blocks other than the loop count."""
    corrupt = InvalidImage(f"{label} is a truncated or corrupt GIF: re-export or re-download it")
    if len(data) < 13 or data[:6] not in (b"GIF87a", b"GIF89a"):
        raise corrupt
    pos = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)
    out = bytearray(data[:pos])
    while pos < len(data) and data[pos] != 0x3B:  # a missing trailer is tolerated
        block = data[pos]
        if block == 0x2C:  # image descriptor, optional local colour table, LZW code size, data
            if pos + 11 > len(data):
                raise corrupt
            flags = data[pos + 9]
            start = pos + 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0) + 1
            end = _skip_sub_blocks(data, start, corrupt)
            out += data[pos:end]
        elif block == 0x21 and pos + 2 <= len(data):
            end = _skip_sub_blocks(data, pos + 2, corrupt)
            kind = data[pos + 1]
            if kind in (0xF9, 0x01) or (kind == 0xFF and data[pos + 2 : pos + 14] in _KEPT_APPLICATIONS):
                out += data[pos:end]  # graphic control, plain text, loop count
        else:
            raise corrupt
        pos = end
    out.append(0x3B)
    return bytes(out)


def _skip_sub_blocks(data: bytes, pos: int, corrupt: Exception) -> int:
    while True:
        if pos >= len(data):
            raise corrupt
        length = data[pos]
        pos += 1 + length
        if length == 0:
            return pos
