"""Image posts on the real reference PDS: 4 images (one 24 MP), EXIF rotation, no GPS left,
markdown images, concurrency of uploads, and a failing image that posts nothing."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image as PILImage

from pysky_async import AsyncBskyClient, External, Image, InvalidImage, Post

from .test_images import encoded, exif_photo, photo_like
from .test_pds_posts import bsky  # noqa: F401 - the fixture

pytestmark = pytest.mark.anyio


async def test_four_images_including_24mp_and_a_rotated_jpeg(bsky: AsyncBskyClient, tmp_path: Path) -> None:  # noqa: F811
    big = tmp_path / "big.png"
    photo_like(6000, 4000).save(big, "PNG", compress_level=1)
    rotated = tmp_path / "rotated.jpg"
    rotated.write_bytes(exif_photo())  # 60x40 stored, EXIF orientation 6, GPS and XMP inside
    transparent = PILImage.new("RGBA", (30, 20), (0, 0, 255, 0))
    (tmp_path / "clear.png").write_bytes(encoded(transparent, "PNG"))
    post = Post("four images ![from markdown](%s)" % (tmp_path / "clear.png"))
    post.add(Image(filename=big, alt="a big photo")).add(Image(filename=rotated, alt="turned"))
    post.add(Image(data=encoded(photo_like(300, 200), "JPEG"), alt=""))
    ref = await bsky.create_post(post=post)
    record = await bsky.get_record(ref.uri)
    assert record.value.text == "four images"
    images = record.value.embed.raw["images"]
    assert record.value.embed["$type"] == "app.bsky.embed.images" and len(images) == 4
    assert [i["alt"] for i in images] == ["a big photo", "turned", "", "from markdown"]
    big_image, turned = images[0], images[1]
    assert big_image["image"]["size"] <= 1_000_000 and big_image["image"]["mimeType"] == "image/jpeg"
    ratio = big_image["aspectRatio"]
    assert ratio["width"] * ratio["height"] > 8_000_000 and abs(ratio["width"] / ratio["height"] - 1.5) < 0.01
    assert turned["aspectRatio"] == {"width": 40, "height": 60}, "from the rotated size"
    assert images[3]["image"]["mimeType"] == "image/png"
    blob = await bsky.get_blob(bsky.did or "", turned["image"]["ref"]["$link"])
    uploaded = PILImage.open(io.BytesIO(blob))
    assert uploaded.size == (40, 60)
    assert not uploaded.getexif() and b"Exif" not in blob and b"secret" not in blob, "no EXIF, GPS or XMP left"


async def test_link_card_thumb_goes_through_the_image_pipeline(bsky: AsyncBskyClient) -> None:  # noqa: F811
    thumb = encoded(photo_like(1200, 800), "PNG")
    ref = await bsky.create_post(post=Post("card").add(External("https://example.com", "Ex", "desc", thumb=thumb)))
    card = (await bsky.get_record(ref.uri)).value.embed.external.raw
    assert card["thumb"]["mimeType"] == "image/jpeg" and card["thumb"]["size"] <= 1_000_000


async def test_a_bad_image_fails_the_post_and_nothing_is_posted(bsky: AsyncBskyClient, tmp_path: Path) -> None:  # noqa: F811
    good = Image(data=encoded(photo_like(100, 100), "JPEG"))
    truncated = tmp_path / "half.jpg"
    truncated.write_bytes(encoded(photo_like(400, 300), "JPEG")[:3000])
    with pytest.raises(InvalidImage, match=r"half\.jpg"):
        await bsky.create_post(post=Post("bad").add(good).add(Image(filename=truncated)))
    with pytest.raises(InvalidImage, match=r"missing\.png"):
        await bsky.create_post(post=Post("![x](%s)" % (tmp_path / "missing.png")))
    five = Post("five")
    for _ in range(5):
        five.add(good)
    with pytest.raises(Exception, match="4 images"):
        await bsky.create_post(post=five)
    assert await bsky.list_records("app.bsky.feed.post").collect() == []


async def test_quote_with_media_is_record_with_media(bsky: AsyncBskyClient) -> None:  # noqa: F811
    quoted = await bsky.create_post("the original")
    post = Post("quoting with a picture", quote_uri=quoted.uri).add(Image(data=encoded(photo_like(200, 100), "PNG"),
                                                                         alt="pic"))
    embed = (await bsky.get_record((await bsky.create_post(post=post)).uri)).value.embed.raw
    assert embed["$type"] == "app.bsky.embed.recordWithMedia"
    assert embed["record"] == {"$type": "app.bsky.embed.record", "record": quoted.to_dict()}
    assert embed["media"]["$type"] == "app.bsky.embed.images"
    assert embed["media"]["images"][0]["alt"] == "pic"
    assert embed["media"]["images"][0]["aspectRatio"] == {"width": 200, "height": 100}
