"""Media for posts: images prepared and uploaded as blobs, and link cards (``External``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._exceptions import InvalidInput, PostFailed, PyskyError

if TYPE_CHECKING:
    from ._images import Image
    from ._records import Records


@dataclass(frozen=True)
class External:
    """A link card: ``External(uri, title, description, thumb=path|bytes|None)``."""

    uri: str
    title: str = ""
    description: str = ""
    thumb: str | Path | bytes | None = None


class Media:
    """Images and link cards for posts (``bsky.media``).

    Args:
        records: uploads the blobs.
        image_max_bytes: images are re-encoded to fit this blob size.
    """

    def __init__(self, records: Records, *, image_max_bytes: int = 1_000_000) -> None:
        self._records = records
        self.image_max_bytes = image_max_bytes

    async def upload_image(self, image: Image, number: int = 1) -> dict[str, Any]:
        """Prepare (in a worker thread) and upload an image: an ``app.bsky.embed.images#image``.

        Raises InvalidInput for an image that cannot be used, PostFailed naming image ``number``
        for a failed upload.
        """
        import anyio

        from ._images import prepare_image

        name = str(image.filename) if image.filename is not None else "image data"
        try:
            prepared = await anyio.to_thread.run_sync(lambda: prepare_image(image, max_bytes=self.image_max_bytes))
            blob = await self._records.upload_blob(prepared.data, prepared.mimetype)
        except InvalidInput:
            raise
        except (PyskyError, OSError) as exc:
            raise PostFailed(f"image {number} ({name})", exc) from exc
        return {"image": blob, "alt": image.alt or "", "aspectRatio": prepared.aspect_ratio}

    async def external(self, external: External) -> dict[str, Any]:
        """An ``app.bsky.embed.external`` link card (its thumbnail uploaded)."""
        card: dict[str, Any] = {"uri": external.uri, "title": external.title, "description": external.description}
        if external.thumb is not None:
            from ._images import Image

            thumb = external.thumb
            image = Image(data=thumb) if isinstance(thumb, bytes) else Image(filename=thumb)
            card["thumb"] = (await self.upload_image(image))["image"]
        return {"$type": "app.bsky.embed.external", "external": card}
