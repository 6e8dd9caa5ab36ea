"""The post API: ``await bsky.create_post(text=...)`` or ``create_post(post=Post(...))``.

Everything that can fail is done before the record is written — text limits, mention lookups,
reply and quote references, self-labels, image preparation and uploads, video processing — so a failed post
leaves nothing behind, and the error says which part failed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict

from ._exceptions import (
    BadRequest,
    IdentityNotFound,
    InvalidIdentifier,
    InvalidInput,
    InvalidPost,
    PostFailed,
    PyskyError,
    RecordNotFound,
    StorageError,
)
from ._formats import Datetime, Language
from ._lenient import at_uri_from_text
from ._media import External, Media
from ._records import Record, RecordRef
from ._syntax import AtUri, Tid

logger = logging.getLogger("pysky_async")

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._account import Account
    from ._identity import IdentityResolver
    from ._images import Image
    from ._records import Records
    from ._richtext import Facet, RichText  # rich text loads the regex module: imported where used
    from ._storage.store import Store
    from ._video import Video, Videos

POST = "app.bsky.feed.post"
UNCONFIRMED = ""
"""The ``cid`` of a keyed post whose ``createRecord`` was sent and not yet answered."""


def _row_fields(record: dict[str, Any]) -> dict[str, Any]:
    reply = record.get("reply", {})
    return {"text": record["text"], "reply_root_uri": reply.get("root", {}).get("uri"),
            "reply_parent_uri": reply.get("parent", {}).get("uri")}


@dataclass
class Post:
    """A post to make. Text may hold markdown links and images; links, @mentions and
    #hashtags are detected. ``reply_uri``/``quote_uri`` take at:// URIs or bsky.app links."""

    text: str = ""
    langs: list[str] | None = None
    reply_uri: str | None = None
    quote_uri: str | None = None
    client_unique_key: str | None = None
    reply_client_unique_key: str | None = None
    created_at: dt.datetime | None = None
    facets: list[Facet] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)
    video: Video | None = None
    external: External | None = None
    labels: list[str] | None = None
    """Self-labels: ``["porn"]``, ``["graphic-media"]``... (``pysky_async.POST_SELF_LABELS``)."""

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Raise InvalidPost when the text is not valid Unicode, or ``langs`` or ``created_at`` is not a
        valid atproto value."""
        from ._richtext import check_text

        check_text(self.text)
        if self.langs is not None:
            if len(self.langs) > 3:
                raise InvalidPost("a post can name at most 3 languages")
            for lang in self.langs:
                try:
                    Language(lang)
                except InvalidIdentifier as exc:
                    raise InvalidPost(f"Post(langs=...): {exc}; use BCP 47 tags such as 'en' or 'pt-BR'") from None
        if self.created_at is not None:
            _created_at(self.created_at)
        if self.labels is not None:
            from ._moderation import self_labels

            self_labels(self.labels)
        _check_one_media(len(self.images), self.video is not None, self.external is not None)

    def add(self, item: Any) -> Post:
        """Attach a Facet, Image, Video or External; returns the post for chaining."""
        from ._richtext import Facet

        if isinstance(item, Facet):
            self.facets.append(item)
            return self
        if isinstance(item, External):
            if self.external is not None:
                raise InvalidPost("a post can have one link card (External)")
            _check_one_media(len(self.images), self.video is not None, True)
            self.external = item
            return self
        from ._images import Image
        from ._video import Video

        if isinstance(item, Image):
            _check_one_media(len(self.images) + 1, self.video is not None, self.external is not None)
            self.images.append(item)
        elif isinstance(item, Video):
            if self.video is not None:
                raise InvalidPost("a post can have one video")
            _check_one_media(len(self.images), True, self.external is not None)
            self.video = item
        else:
            raise InvalidPost(f"a post can hold Facet, Image, Video or External, not {type(item).__name__}")
        return self


class PostOptions(TypedDict, total=False):
    """``create_post(text, **options)``: the other fields of a ``Post`` (see ``Post``)."""

    langs: list[str] | None
    reply_uri: str | None
    quote_uri: str | None
    client_unique_key: str | None
    reply_client_unique_key: str | None
    created_at: dt.datetime | None
    facets: list[Facet]
    images: list[Image]
    video: Video | None
    external: External | None
    labels: list[str] | None


MAX_IMAGES = 4


class Posts:
    """Posts (``bsky.posts``): everything that can fail is done before the record is written.

    Args:
        xrpc: how calls are made. store: the posts table (``client_unique_key``).
        sessions: the account. records, identity, media, video: the parts of a post.
    """

    def __init__(self, store: Store, sessions: Account, records: Records, identity: IdentityResolver,
                 media: Media, video: Videos) -> None:
        self._store = store
        self._sessions = sessions
        self._records = records
        self._identity = identity
        self._media = media
        self._video = video

    async def create(self, text: str | None = None, *, post: Post | None = None,
                     **options: Unpack[PostOptions]) -> RecordRef:
        """Make a post; returns its ``uri`` and ``cid``. See ``Post`` for the options."""
        from ._richtext import parse
        from ._storage.repositories import PostRepository

        if text is None and post is None:
            raise InvalidPost("create_post() needs something to post: create_post('Hello') or "
                              "create_post(post=Post('Hello', ...))")
        if text is not None and post is not None:
            raise InvalidPost("pass the text or post=Post(...), not both: put the text in the Post")
        if post is not None and options:
            raise InvalidPost(f"pass {', '.join(sorted(options))} inside post=Post(...), not next to it "
                              "(they would be ignored)")
        post = post if post is not None else Post(text or "", **options)
        post.check()  # before any request
        rich = parse(post.text, explicit=post.facets)
        rich.check_length()
        _check_not_empty(post, rich)
        session = await self._sessions.current()
        key = post.client_unique_key
        pending: str | None = None
        if key:
            async with self._store.transaction() as db:
                existing = await PostRepository(db).by_key(session.did, key)
            if existing is not None and existing.cid != UNCONFIRMED:  # posted before: never post twice
                return RecordRef(existing.uri, existing.cid)
            if existing is not None:  # sent before, its outcome unknown (a crash, a lost reply)
                landed = await self._landed(existing.uri)
                if landed is not None:
                    await self._confirm(landed)
                    return landed
                pending = existing.uri
        record = await self._build_post_record(post, rich)
        if key:
            return await self._create_keyed(session.did, key, record, pending)
        ref = await self._records.create(POST, record)
        try:
            async with self._store.transaction() as db:
                await PostRepository(db).add(did=session.did, uri=ref.uri, cid=ref.cid, **_row_fields(record))
        except BaseException as failure:
            try:
                await asyncio.shield(self._records.delete(ref.uri))  # no half-written state
            except PyskyError as undo_failed:
                if not isinstance(failure, StorageError):
                    raise failure from undo_failed
                # the database is down, so the post can neither be recorded nor taken back (the
                # delete needs the write budget's ledger): the server's answer wins
                logger.warning("%s was posted but the database could not record it (%s); returning it",
                               ref.uri, failure)
                return ref
            raise
        return ref

    async def _create_keyed(self, did: str, key: str, record: dict[str, Any], pending: str | None) -> RecordRef:
        """Post once per ``client_unique_key``: the post's URI is recorded *before* the
        ``createRecord`` is sent, so a process killed after the server accepted it finds it there
        on its next try (``_landed``) instead of posting again."""
        from ._storage.repositories import PostRepository

        rkey = Tid.next() if pending is None else AtUri.parse(pending).rkey
        uri = f"at://{did}/{POST}/{rkey}"
        if pending is None:
            async with self._store.transaction() as db:
                await PostRepository(db).add(did=did, uri=uri, cid=UNCONFIRMED, client_unique_key=key,
                                             **_row_fields(record))
        try:
            ref = await self._records.create(POST, record, rkey=rkey)
        except PyskyError:
            landed = await self._landed(uri)
            if landed is None:  # refused: nothing is left behind
                async with self._store.transaction() as db:
                    await PostRepository(db).remove(uri)
                raise
            ref = landed
        try:
            await self._confirm(ref)
        except StorageError as failure:  # posted; the row stays unconfirmed and the next try confirms it
            logger.warning("%s was posted but the database could not confirm it (%s); returning it", ref.uri,
                           failure)
        return ref

    async def _landed(self, uri: str) -> RecordRef | None:
        """The post at ``uri`` if the server has it."""
        try:
            record = await self._records.get(uri)
        except RecordNotFound:
            return None
        return RecordRef(record.uri, record.cid) if record.cid else None

    async def _confirm(self, ref: RecordRef) -> None:
        from ._storage.repositories import PostRepository

        async with self._store.transaction() as db:
            await PostRepository(db).confirm(ref.uri, ref.cid)

    async def _build_post_record(self, post: Post, rich: RichText) -> dict[str, Any]:
        images = [*post.images, *[_markdown_image(i.source, i.alt) for i in rich.images]]
        if len(images) > MAX_IMAGES:
            raise InvalidPost(f"a post can have {MAX_IMAGES} images, this one has {len(images)}")
        if images and post.video is not None:
            raise InvalidPost("a post can have images or a video, not both")
        created_at = _created_at(post.created_at or dt.datetime.now(dt.timezone.utc))
        record: dict[str, Any] = {"$type": POST, "text": rich.text, "createdAt": str(created_at)}
        if post.langs:
            record["langs"] = list(post.langs)
        if post.labels:
            from ._moderation import self_labels

            record["labels"] = self_labels(post.labels)
        mentions, reply, quote, media = await asyncio.gather(
            _part("mention lookup", self._resolve_mentions(rich)),
            _part("reply reference", self._reply_refs(post)),
            _part("quoted post", self._strong_ref(post.quote_uri)),
            _part("media", self._embed_media(images, post)),
        )
        facets = sorted([*rich.facets, *mentions], key=lambda f: f.byteStart)
        _check_facets(facets, rich.text)
        if facets:
            record["facets"] = [f.to_dict() for f in facets]
        if reply:
            record["reply"] = reply
        embed = media
        if quote is not None:
            record_embed = {"$type": "app.bsky.embed.record", "record": quote}
            embed = ({"$type": "app.bsky.embed.recordWithMedia", "record": record_embed, "media": media}
                     if media else record_embed)
        if embed:
            record["embed"] = embed
        return record

    async def _resolve_mentions(self, rich: RichText) -> list[Facet]:
        from ._richtext import Facet

        async def resolve(handle: str) -> str | None:
            try:
                return await self._identity.resolve_handle(handle)
            except (BadRequest, IdentityNotFound, InvalidIdentifier):
                return None  # no such account (or not a handle at all): the mention stays plain text

        dids = await asyncio.gather(*(resolve(handle) for _, _, handle in rich.mentions))
        return [Facet(start, end, did=did) for (start, end, _), did in zip(rich.mentions, dids, strict=True) if did]

    async def _strong_ref(self, uri: str | None) -> dict[str, str] | None:
        return None if uri is None else (await self._get_record(uri)).ref.to_dict()

    async def _get_record(self, uri: str) -> Record:
        at = at_uri_from_text(uri)
        if not at.has_did:
            at = AtUri(await self._identity.resolve_handle(at.authority), at.collection, at.rkey)
        return await self._records.get(at)

    async def _reply_refs(self, post: Post) -> dict[str, Any] | None:
        from ._storage.repositories import PostRepository

        parent_uri = post.reply_uri
        if post.reply_client_unique_key is not None:
            session = await self._sessions.current()
            async with self._store.transaction() as db:
                row = await PostRepository(db).by_key(session.did, post.reply_client_unique_key)
            if row is None:
                raise InvalidPost(f"no post was made with client_unique_key={post.reply_client_unique_key!r}")
            parent_uri = row.uri
        if parent_uri is None:
            return None
        record = await self._get_record(parent_uri)  # once: its ref and its thread's root
        parent = record.ref.to_dict()
        root = record.value.raw.get("reply", {}).get("root") or parent
        return {"root": {"uri": root["uri"], "cid": root["cid"]}, "parent": parent}

    async def _embed_media(self, images: list[Any], post: Post) -> dict[str, Any] | None:
        _check_one_media(len(images), post.video is not None, post.external is not None)  # markdown images too
        if images:
            blobs = await asyncio.gather(*(self._media.upload_image(image, n) for n, image in enumerate(images, 1)))
            return {"$type": "app.bsky.embed.images", "images": blobs}
        if post.video is not None:
            from ._video import video_embed

            uploaded = await self._video.upload(post.video)
            return video_embed(uploaded, post.video)
        if post.external is not None:
            return await self._media.external(post.external)
        return None


def _check_not_empty(post: Post, rich: RichText) -> None:
    """An empty post is a mistake, not a post: as bsky.app's composer, text that is only
    whitespace needs images, a video, a link card or a quoted post to go with it."""
    if rich.text.strip() or post.images or rich.images or post.video is not None or post.external is not None \
            or post.quote_uri is not None:
        return
    raise InvalidPost("the post is empty: give it text, or attach images, a video, a link card (External) or "
                      "a quoted post (quote_uri=)")


def _check_one_media(images: int, video: bool, external: bool) -> None:
    """Bluesky shows one kind of media per post (a quote may come with it): images, a video or
    a link card. Raise InvalidPost naming the conflict instead of dropping a part."""
    kinds = [name for name, present in (("images", images), ("a video", video), ("a link card (External)", external))
             if present]
    if len(kinds) > 1:
        raise InvalidPost(f"a post can hold images, a video or a link card, not {' and '.join(kinds)}: "
                          "Bluesky cannot show them together; post them separately")


async def _part(name: str, work: Any) -> Any:
    try:
        return await work
    except (PostFailed, InvalidInput):
        raise
    except (PyskyError, OSError) as exc:
        raise PostFailed(name, exc) from exc


def _markdown_image(source: str, alt: str) -> Any:
    from ._images import Image

    if source.startswith(("http://", "https://")):
        raise InvalidPost(f"markdown image {source!r}: only local files can be attached; download it first")
    return Image(filename=source, alt=alt)


def _check_facets(facets: list[Facet], text: str) -> None:
    encoded = text.encode("utf-8")
    end = 0
    for facet in facets:
        if facet.byteEnd > len(encoded):
            raise InvalidPost(f"facet [{facet.byteStart}, {facet.byteEnd}) is past the end of the text "
                              f"({len(encoded)} bytes)")
        if facet.byteStart < end:
            raise InvalidPost(f"facets overlap at byte {facet.byteStart}")
        try:
            encoded[facet.byteStart:facet.byteEnd].decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidPost(f"facet [{facet.byteStart}, {facet.byteEnd}) cuts a character in two") from None
        end = facet.byteEnd


def _created_at(moment: dt.datetime) -> Datetime:
    """``createdAt`` for a record: UTC with milliseconds (a naive datetime counts as local time)."""
    try:
        return Datetime.of(moment.astimezone(dt.timezone.utc))
    except InvalidIdentifier as exc:
        raise InvalidPost(f"Post(created_at=...): {exc}") from None
