"""Image preparation: orientation, metadata stripping, formats, fitting under the byte limit, errors."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import ExifTags, ImageCms, ImageSequence
from PIL import Image as PILImage

from pysky_async._exceptions import InvalidInput
from pysky_async._images import MAX_PIXELS, Image, ImageTooLarge, InvalidImage, PreparedImage, prepare_image

MB = 1_000_000


def photo_like(width: int, height: int) -> PILImage.Image:
    """Noise at several scales (roughly 1/f, like a photo) over colour gradients; compresses like a photo."""
    tile = PILImage.effect_noise((max(1, width // 4), max(1, height // 4)), 40)
    layer = PILImage.new("L", (width, height))
    for x in range(4):
        for y in range(4):
            layer.paste(tile, (x * (width // 4), y * (height // 4)))
    for divisor, sigma in ((4, 50), (16, 60), (64, 70)):
        coarse = PILImage.effect_noise((max(1, width // divisor), max(1, height // divisor)), sigma)
        layer = PILImage.blend(layer, coarse.resize((width, height), PILImage.Resampling.BICUBIC), 0.5)
    across = PILImage.linear_gradient("L").rotate(90).resize((width, height))
    down = PILImage.linear_gradient("L").resize((width, height))
    back = across.transpose(PILImage.Transpose.FLIP_LEFT_RIGHT)
    bands = (PILImage.blend(layer, across, 0.4), PILImage.blend(layer, down, 0.4), PILImage.blend(layer, back, 0.6))
    return PILImage.merge("RGB", bands)


def encoded(img: PILImage.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, fmt, **params)
    return buffer.getvalue()


def reopen(prepared: PreparedImage) -> PILImage.Image:
    img = PILImage.open(io.BytesIO(prepared.data))
    img.load()
    return img


@pytest.fixture(scope="module")
def big_photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("images") / "photo-24mp.png"
    photo_like(6000, 4000).save(path, "PNG", compress_level=1)
    return path


@pytest.mark.slow  # Pillow's work on 24 megapixels, the same on every Python: once, in the full suite
def test_24_megapixel_photo_fits_with_most_pixels_and_few_encodes(big_photo: Path) -> None:
    prepared = prepare_image(Image(filename=big_photo), max_bytes=MB)

    assert prepared.mimetype == "image/jpeg"
    assert len(prepared.data) <= MB
    assert (prepared.original_width, prepared.original_height) == (6000, 4000)
    pixels = prepared.width * prepared.height
    fixed_step_2000px = 2000 * 1333  # what Image.thumbnail((2000, 2000)) keeps
    assert pixels >= 4_000_000
    assert pixels >= 2 * fixed_step_2000px
    assert abs(prepared.width / prepared.height - 1.5) < 0.01
    assert prepared.encodes <= 8
    assert prepared.quality is not None and 70 <= prepared.quality <= 95
    assert reopen(prepared).size == (prepared.width, prepared.height)


def test_small_photo_is_reencoded_at_high_quality_in_one_attempt() -> None:
    prepared = prepare_image(Image(data=encoded(photo_like(400, 300), "PNG")))

    assert prepared.mimetype == "image/jpeg"
    assert (prepared.width, prepared.height, prepared.quality, prepared.encodes) == (400, 300, 95, 1)


def exif_photo() -> bytes:
    img = PILImage.new("RGB", (60, 40), "white")
    img.paste((255, 0, 0), (0, 0, 10, 10))  # a red top-left corner
    exif = PILImage.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Make] = "SecretCam"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (52.0, 22.0, 1.5)
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">secret-xmp</x:xmpmeta>'
    return encoded(img, "JPEG", exif=exif, xmp=xmp, comment=b"secret-comment", quality=95)


def test_exif_orientation_is_applied_and_all_metadata_stripped() -> None:
    data = exif_photo()
    source = PILImage.open(io.BytesIO(data))
    assert source.size == (60, 40)
    assert source.getexif().get_ifd(ExifTags.IFD.GPSInfo)  # the input really carries GPS

    prepared = prepare_image(Image(data=data))

    assert (prepared.width, prepared.height) == (40, 60)
    assert prepared.aspect_ratio == {"width": 40, "height": 60}
    assert (prepared.original_width, prepared.original_height) == (40, 60)
    result = reopen(prepared)
    assert result.size == (40, 60)
    assert not result.getexif()
    assert not result.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    red, green, blue = result.convert("RGB").getpixel((35, 3))  # type: ignore[misc]  # rotated 90° clockwise: red is now top-right
    assert red > 200 and green < 80 and blue < 80
    for secret in (b"Exif", b"SecretCam", b"secret-xmp", b"secret-comment", b"xmpmeta"):
        assert secret not in prepared.data


def test_srgb_icc_profile_is_dropped_and_a_broken_one_ignored() -> None:
    img = photo_like(200, 100)
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for icc in (srgb, b"not an icc profile at all"):
        prepared = prepare_image(Image(data=encoded(img, "PNG", icc_profile=icc)))
        assert "icc_profile" not in reopen(prepared).info


def swapped_primaries_profile() -> bytes:
    """An RGB profile that is sRGB with red and blue swapped, so a conversion is easy to see."""
    profile = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    (count,) = struct.unpack(">I", profile[128:132])
    entries = {bytes(profile[132 + 12 * i : 136 + 12 * i]): 136 + 12 * i for i in range(count)}
    red, blue = entries[b"rXYZ"], entries[b"bXYZ"]
    profile[red : red + 8], profile[blue : blue + 8] = profile[blue : blue + 8], profile[red : red + 8]
    return bytes(profile).replace("sRGB".encode("utf-16-be"), "swap".encode("utf-16-be")).replace(b"sRGB", b"swap")


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_pixels_are_converted_to_srgb_with_the_embedded_profile(mode: str) -> None:
    img = PILImage.new(mode, (64, 64), (255, 0, 0, 255)[: len(mode)])
    if mode == "RGBA":
        img.paste((0, 0, 0, 0), (0, 0, 8, 8))

    prepared = prepare_image(Image(data=encoded(img, "PNG", icc_profile=swapped_primaries_profile())))

    result = reopen(prepared)
    assert "icc_profile" not in result.info
    red, green, blue = result.convert("RGB").getpixel((40, 40))  # type: ignore[misc]
    assert red < 40 and green < 40 and blue > 200


def test_transparent_png_keeps_alpha_as_png() -> None:
    img = PILImage.new("RGBA", (300, 200), (0, 128, 255, 255))
    img.paste((0, 0, 0, 0), (0, 0, 100, 100))

    prepared = prepare_image(Image(data=encoded(img, "PNG")))

    assert prepared.mimetype == "image/png"
    assert prepared.quality is None
    result = reopen(prepared)
    assert result.mode == "RGBA"
    assert result.getpixel((10, 10))[3] == 0  # type: ignore[index]
    assert result.getpixel((200, 150)) == (0, 128, 255, 255)


def test_palette_transparency_is_kept() -> None:
    img = PILImage.new("P", (64, 64), 1)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.paste(0, (0, 0, 32, 32))
    prepared = prepare_image(Image(data=encoded(img, "GIF", transparency=0)))

    assert prepared.mimetype == "image/png"
    result = reopen(prepared).convert("RGBA")
    assert result.getpixel((5, 5))[3] == 0  # type: ignore[index]
    assert result.getpixel((50, 50)) == (255, 0, 0, 255)


def test_transparent_image_too_big_for_png_becomes_webp_with_alpha() -> None:
    img = photo_like(800, 600).convert("RGBA")
    img.paste((0, 0, 0, 0), (0, 0, 200, 200))

    prepared = prepare_image(Image(data=encoded(img, "PNG")), max_bytes=150_000)

    assert prepared.mimetype == "image/webp"
    assert len(prepared.data) <= 150_000
    result = reopen(prepared)
    assert result.mode == "RGBA"
    assert result.getpixel((20, 20))[3] == 0  # type: ignore[index]
    assert result.getpixel((700, 500))[3] == 255  # type: ignore[index]


def test_opaque_alpha_channel_gives_jpeg() -> None:
    prepared = prepare_image(Image(data=encoded(photo_like(200, 100).convert("RGBA"), "PNG")))
    assert prepared.mimetype == "image/jpeg"


def animated_gif(frames: int, size: int, *, noisy: bool = False) -> bytes:
    images = [
        PILImage.effect_noise((size, size), 80).convert("P")
        if noisy
        else PILImage.new("RGB", (size, size), (index * 50, 0, 0))
        for index in range(frames)
    ]
    return encoded(
        images[0], "GIF", save_all=True, append_images=images[1:], duration=100, loop=0, comment=b"secret-comment"
    )


def with_xmp_block(gif: bytes) -> bytes:
    """Insert an XMP application extension after the global colour table."""
    flags = gif[10]
    start = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    block = b"\x21\xff\x0bXMP DataXMP" + bytes([10]) + b"secret-xmp" + b"\x00"
    return gif[:start] + block + gif[start:]


def test_animated_gif_under_the_limit_stays_animated_without_comment() -> None:
    data = with_xmp_block(animated_gif(5, 64))
    assert b"secret-comment" in data and b"secret-xmp" in data
    assert getattr(PILImage.open(io.BytesIO(data)), "n_frames", 1) == 5

    prepared = prepare_image(Image(data=data))

    assert prepared.mimetype == "image/gif"
    assert b"secret-comment" not in prepared.data
    assert b"secret-xmp" not in prepared.data
    with PILImage.open(io.BytesIO(prepared.data)) as result:
        assert getattr(result, "n_frames", 1) == 5
        assert result.info.get("loop") == 0
        assert [frame.info["duration"] for frame in ImageSequence.Iterator(result)] == [100] * 5
    assert (prepared.width, prepared.height, prepared.aspect_ratio) == (64, 64, {"width": 64, "height": 64})


def test_animated_gif_over_the_limit_is_refused_with_video_advice() -> None:
    data = animated_gif(4, 200, noisy=True)
    with pytest.raises(ImageTooLarge, match="video") as caught:
        prepare_image(Image(data=data), max_bytes=len(data) // 2)
    assert isinstance(caught.value, InvalidImage)
    assert "animated GIF" in str(caught.value)


def test_static_gif_is_treated_like_a_normal_image() -> None:
    prepared = prepare_image(Image(data=encoded(photo_like(120, 80).convert("P"), "GIF")))
    assert prepared.mimetype == "image/jpeg"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidImage, match=r"'.*nope\.jpg' not found: check the path"):
        prepare_image(Image(filename=tmp_path / "nope.jpg"))


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidImage, match="is a directory, not an image file"):
        prepare_image(Image(filename=tmp_path))


def test_text_file_renamed_jpg(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("just some text, not a picture\n")
    with pytest.raises(InvalidImage, match=r"notes\.jpg' is not an image .*use a JPEG, PNG, WebP or GIF"):
        prepare_image(Image(filename=path))


def test_truncated_jpeg(tmp_path: Path) -> None:
    data = encoded(photo_like(400, 300), "JPEG", quality=90)
    path = tmp_path / "half.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidImage, match=r"half\.jpg' is truncated or corrupt .*re-export or re-download"):
        prepare_image(Image(filename=path))


def test_impossible_max_bytes() -> None:
    data = encoded(photo_like(400, 300), "PNG")
    with pytest.raises(ImageTooLarge, match=r"image data cannot be made to fit in 500 bytes.*raise max_bytes"):
        prepare_image(Image(data=data), max_bytes=500)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims a size; Pillow reads the size without decoding anything."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


@pytest.mark.parametrize(("width", "height"), [(12_000, 9_000), (30_000, 30_000)])
def test_decompression_bombs_are_refused(width: int, height: int) -> None:
    assert width * height > MAX_PIXELS
    with pytest.raises(InvalidImage, match=r"too many pixels|megapixels"):
        prepare_image(Image(data=png_header_only(width, height)))


def test_cmyk_jpeg_does_not_crash() -> None:
    img = PILImage.new("CMYK", (120, 80), (0, 255, 255, 0))  # red in CMYK
    prepared = prepare_image(Image(data=encoded(img, "JPEG")))
    assert prepared.mimetype == "image/jpeg"
    red, green, blue = reopen(prepared).convert("RGB").getpixel((60, 40))  # type: ignore[misc]
    assert red > 200 and green < 60 and blue < 60


def test_16_bit_greyscale_png_is_scaled_not_clipped() -> None:
    ramp = PILImage.linear_gradient("L").resize((256, 64)).convert("I").point(lambda value: value * 257)
    data = encoded(ramp.convert("I;16"), "PNG")
    assert PILImage.open(io.BytesIO(data)).mode.startswith("I")

    prepared = prepare_image(Image(data=data))

    result = reopen(prepared)
    assert result.mode == "L"
    assert result.getpixel((128, 1)) < 20  # type: ignore[operator]
    assert 100 < result.getpixel((128, 32)) < 160  # type: ignore[operator]


def test_image_needs_exactly_one_source(tmp_path: Path) -> None:
    with pytest.raises(InvalidImage, match="exactly one of filename= or data=, got neither"):
        Image()
    with pytest.raises(InvalidImage, match="got both"):
        Image(filename=tmp_path / "a.jpg", data=b"x")
    with pytest.raises(InvalidImage, match="image data is empty"):
        Image(data=b"")
    with pytest.raises(InvalidInput, match="max_bytes"):
        prepare_image(Image(data=b"x"), max_bytes=0)
    assert issubclass(ImageTooLarge, InvalidImage) and issubclass(InvalidImage, ValueError)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    width=st.integers(1, 300),
    height=st.integers(1, 300),
    max_bytes=st.integers(400, 60_000),
    alpha=st.booleans(),
)
def test_output_always_fits_or_is_refused(width: int, height: int, max_bytes: int, alpha: bool) -> None:
    img = photo_like(max(4, width), max(4, height)).resize((width, height))
    if alpha:
        img = img.convert("RGBA")
        img.putpixel((0, 0), (0, 0, 0, 0))
    try:
        prepared = prepare_image(Image(data=encoded(img, "PNG")), max_bytes=max_bytes)
    except ImageTooLarge:
        return
    assert len(prepared.data) <= max_bytes
    assert reopen(prepared).size == (prepared.width, prepared.height)
    assert prepared.encodes <= 10
