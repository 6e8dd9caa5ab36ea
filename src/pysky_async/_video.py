"""Videos: check a file locally, upload it to Bluesky's video service, build the embed.

``info = check_video(Video(filename="clip.mp4"))`` (synchronous, CPU: run it in a thread) or
``uploaded = await bsky.upload_video(Video(filename="clip.mp4", alt="..."))`` then
``video_embed(uploaded)`` for an ``app.bsky.embed.video`` record field.

What passes ``check_video`` (anything else raises ``IncompatibleVideo`` before any upload):

    container        video            audio (optional)    mimetype
    MP4 / MOV        H.264            AAC                 video/mp4, video/quicktime
    WebM             VP8, VP9, AV1    Opus, Vorbis        video/webm

at most 10 minutes (``max_duration``) and 300,000,000 bytes (``max_bytes``), and whole: the
first frames must decode and the last packets must be there. Refused with a reason that says
what to do: HEVC/H.265 and MPEG-4 Part 2 (mp4v, DivX, Xvid) video, files without a video
stream (audio only), other containers — MPEG-TS/PS (``video/mpeg``: no index, so duration and
completeness cannot be checked cheaply; remux to MP4 without re-encoding), Matroska (.mkv),
GIF, AVI... The video service accepts more (it transcodes), but these are the formats Bluesky's
apps upload, so they are the ones known to process.

Uploads follow the video service's wire format: a service token from the account's PDS
(``com.atproto.server.getServiceAuth``) for ``getUploadLimits`` and for ``uploadVideo`` (whose
token, aud = the PDS's ``did:web``, lets the service store the blob on the PDS as the account),
the body streamed from disk, then ``getJobStatus`` polled (no auth) until the job completes.
"""

from __future__ import annotations

import io
import logging
import os
import time
import uuid
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio
import httpx

from ._base import ClientBase
from ._call_log import CallLogMiddleware, CallLogWriter
from ._exceptions import InvalidInput, NetworkError, PyskyError, RateLimitExceeded, RequestTimeout, ServerError
from ._middleware import build_chain
from ._request import AUTH, XrpcRequest
from ._response import XrpcResponse, raise_for_status

if TYPE_CHECKING:
    from av.container import InputContainer

logger = logging.getLogger("pysky_async")

DEFAULT_VIDEO_HOST = "https://video.bsky.app"
MAX_VIDEO_BYTES = 300_000_000
MAX_VIDEO_SECONDS = 600.0
MAX_CAPTION_BYTES = 20_000
MAX_CAPTIONS = 20
UPLOAD_CHUNK = 1 << 20

_ACCEPTED: dict[str, tuple[frozenset[str], frozenset[str], str]] = {
    "mp4": (frozenset({"h264"}), frozenset({"aac"}), "video/mp4"),
    "mov": (frozenset({"h264"}), frozenset({"aac"}), "video/quicktime"),
    "webm": (frozenset({"vp8", "vp9", "av1"}), frozenset({"opus", "vorbis"}), "video/webm"),
}
_REENCODE = "re-encode it to H.264/AAC MP4, e.g. ffmpeg -i IN -c:v libx264 -c:a aac -movflags +faststart OUT.mp4"
_REMUX = "remux it to MP4 without re-encoding: ffmpeg -i IN -c copy -movflags +faststart OUT.mp4"


class IncompatibleVideo(InvalidInput):
    """The video cannot be posted as it is; ``reason`` is a short code, the message says what to do.

    Reasons: ``not_a_video``, ``empty``, ``too_big``, ``too_long``, ``truncated``, ``audio_only``,
    ``hevc``, ``mpeg4_part2``, ``unsupported_video_codec``, ``unsupported_audio_codec``,
    ``unsupported_container``.
    """

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(f"{message} [{reason}]")


class VideoUploadRefused(PyskyError):
    """The video service will not take an upload from this account now (``getUploadLimits``)."""

    def __init__(self, message: str, *, error: str | None = None, limits: Mapping[str, Any] | None = None) -> None:
        self.message = message
        self.error = error
        self.limits = dict(limits or {})
        super().__init__(f"the video service refused the upload: {message}")


class VideoProcessingFailed(PyskyError):
    """The video service's job ended in ``JOB_STATE_FAILED``; nothing was posted.

    ``failure_code``: validation_failure, encoding_failure, pds_upload_failure,
    pds_upload_unsupported_blob_size, generic_failure (or None when the service gave none).
    """

    def __init__(self, job_id: str, failure_code: str | None, message: str | None, error: str | None = None) -> None:
        self.job_id = job_id
        self.failure_code = failure_code
        self.message = message
        self.error = error
        super().__init__(f"video job {job_id} failed ({failure_code or error or 'no failure code'}): "
                         f"{message or error or 'no message'}")


class VideoProcessingTimeout(PyskyError, TimeoutError):
    """The job did not finish within ``timeout`` seconds; nothing was posted. It may still finish:
    ``get_video_job(job_id)`` later, or upload again (the service answers ``already_exists``)."""

    def __init__(self, job_id: str, timeout: float, state: str | None, progress: int | None) -> None:
        self.job_id = job_id
        self.state = state
        self.progress = progress
        super().__init__(f"video job {job_id} still {state or 'unknown'} ({progress or 0}%) after {timeout:g} s; "
                         "raise timeout= or retry later")


@dataclass(frozen=True)
class Caption:
    """A WebVTT caption track: ``Caption("en", filename="en.vtt")`` or ``Caption("en", data=b"WEBVTT...")``."""

    lang: str
    filename: str | os.PathLike[str] | None = None
    data: bytes | None = None

    def __post_init__(self) -> None:
        if not self.lang:
            raise InvalidInput("a Caption needs a language tag (lang='en')")
        if (self.filename is None) == (self.data is None):
            raise InvalidInput("a Caption takes filename= or data=, exactly one")

    def read(self) -> bytes:
        """The caption bytes, checked: WebVTT, at most 20,000 bytes."""
        data = self.data if self.data is not None else _read_file(self.filename)
        if len(data) > MAX_CAPTION_BYTES:
            raise InvalidInput(f"caption {self.lang!r} is {len(data)} bytes; Bluesky takes {MAX_CAPTION_BYTES} at most")
        if not data.lstrip(b"\xef\xbb\xbf").startswith(b"WEBVTT"):
            raise InvalidInput(f"caption {self.lang!r} is not WebVTT (a .vtt file starts with 'WEBVTT')")
        return data


@dataclass(frozen=True)
class Video:
    """A video to upload: ``Video(filename="clip.mp4", alt="...", captions=[Caption("en", "en.vtt")])``."""

    filename: str | os.PathLike[str] | None = None
    data: bytes | None = None
    alt: str | None = None
    captions: Sequence[Caption] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if (self.filename is None) == (self.data is None):
            raise InvalidInput("a Video takes filename= or data=, exactly one")
        if len(self.captions) > MAX_CAPTIONS:
            raise InvalidInput(f"a video takes at most {MAX_CAPTIONS} captions, got {len(self.captions)}")
        if self.alt is not None and len(self.alt) > 10_000:
            raise InvalidInput(f"video alt text is {len(self.alt)} characters; Bluesky takes 1,000 graphemes at most")

    @property
    def name(self) -> str:
        return str(self.filename) if self.filename is not None else "video data"


@dataclass(frozen=True)
class VideoInfo:
    """What ``check_video`` found. ``width``/``height`` are as displayed (rotation applied)."""

    width: int
    height: int
    duration: float
    size: int
    container: str
    video_codec: str
    audio_codec: str | None
    mimetype: str

    @property
    def aspect_ratio(self) -> dict[str, int]:
        """The embed's ``aspectRatio``."""
        return {"width": self.width, "height": self.height}


@dataclass(frozen=True)
class UploadedVideo:
    """A processed video: the ``blob`` to embed, what was checked, the job, and the uploaded captions."""

    blob: dict[str, Any]
    info: VideoInfo
    job_id: str
    alt: str | None = None
    captions: tuple[dict[str, Any], ...] = ()

    def embed(self) -> dict[str, Any]:
        return video_embed(self)


def video_embed(uploaded: UploadedVideo, alt: str | Video | None = None,
                captions: Sequence[Mapping[str, Any]] | None = None, *,
                presentation: str | None = None) -> dict[str, Any]:
    """An ``app.bsky.embed.video`` object. ``alt`` (text, or the Video) and ``captions``
    (``[{"lang", "file": blob}]``) default to what ``upload_video`` kept."""
    alt_text = alt.alt if isinstance(alt, Video) else alt if alt is not None else uploaded.alt
    embed: dict[str, Any] = {"$type": "app.bsky.embed.video", "video": uploaded.blob,
                             "aspectRatio": uploaded.info.aspect_ratio}
    if alt_text:
        embed["alt"] = alt_text
    tracks = [dict(c) for c in (captions if captions is not None else uploaded.captions)]
    if tracks:
        embed["captions"] = tracks
    if presentation is not None:
        embed["presentation"] = presentation
    return embed


# -- checking ---------------------------------------------------------------------------


def check_video(video: Video | str | os.PathLike[str] | bytes, *, max_bytes: int = MAX_VIDEO_BYTES,
                max_duration: float = MAX_VIDEO_SECONDS) -> VideoInfo:
    """Check a video locally (synchronous; blocks for up to a second on large files).

    Raises:
        IncompatibleVideo: with the reason (see the module docstring for what passes).
    """
    if not isinstance(video, Video):
        video = Video(data=bytes(video)) if isinstance(video, (bytes, bytearray)) else Video(filename=video)
    if video.data is not None:
        size, head = len(video.data), video.data[:64]
    else:
        try:
            size = os.stat(video.filename or "").st_size
            with open(video.filename or "", "rb") as file:
                head = file.read(64)
        except OSError as exc:
            raise InvalidInput(f"cannot read the video {video.name}: {exc}") from exc
    if size == 0:
        raise IncompatibleVideo("empty", f"{video.name} is empty")
    if size > max_bytes:
        raise IncompatibleVideo("too_big", f"{video.name} is {size:,} bytes; the limit is {max_bytes:,}: "
                                           "shorten it or encode it at a lower bitrate")
    import av

    try:
        container = av.open(io.BytesIO(video.data) if video.data is not None else os.fspath(video.filename or ""), "r")
    except (av.FFmpegError, OSError, ValueError) as exc:
        if _is_iso_media(head):
            raise IncompatibleVideo("truncated", f"{video.name} is an incomplete MP4 ({exc}): "
                                                 "copy or export it again") from exc
        raise IncompatibleVideo("not_a_video", f"{video.name} is not a video ({exc})") from exc
    with container:
        return _inspect(container, video.name, size, head, max_duration)


def _inspect(container: InputContainer, name: str, size: int, head: bytes, max_duration: float) -> VideoInfo:
    import av

    videos = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    audios = list(container.streams.audio)
    if not videos:
        if not container.streams and _is_iso_media(head):
            raise IncompatibleVideo("truncated", f"{name} is an incomplete MP4 (it has no index, the 'moov' box, "
                                                 "which is written last): copy or export it again")
        if audios:
            raise IncompatibleVideo("audio_only", f"{name} has sound but no picture: Bluesky videos need a video track")
        raise IncompatibleVideo("not_a_video", f"{name} has no video stream")
    kind = _container_kind(container.format.name, head)
    stream = videos[0]
    vcodec = stream.codec_context.name if stream.codec_context is not None else "unknown"
    if vcodec == "hevc":
        raise IncompatibleVideo("hevc", f"{name} is HEVC (H.265) video, which Bluesky does not take: {_REENCODE}")
    if vcodec == "mpeg4":
        raise IncompatibleVideo("mpeg4_part2", f"{name} is MPEG-4 Part 2 video (mp4v/DivX/Xvid), which Bluesky does "
                                               f"not take: {_REENCODE}")
    if kind not in _ACCEPTED:
        hint = _REMUX if vcodec == "h264" else _REENCODE
        raise IncompatibleVideo("unsupported_container", f"{name} is in {kind} format; Bluesky takes MP4, MOV or WebM: "
                                                         f"{hint}")
    video_codecs, audio_codecs, mimetype = _ACCEPTED[kind]
    if vcodec not in video_codecs:
        raise IncompatibleVideo("unsupported_video_codec", f"{name}: {vcodec} video in {kind} is not supported "
                                                           f"({', '.join(sorted(video_codecs))} are): {_REENCODE}")
    acodecs = [a.codec_context.name if a.codec_context is not None else "unknown" for a in audios]
    bad_audio = [c for c in acodecs if c not in audio_codecs]
    if bad_audio:
        raise IncompatibleVideo("unsupported_audio_codec", f"{name}: {bad_audio[0]} audio in {kind} is not supported "
                                                           f"({', '.join(sorted(audio_codecs))} or no audio are): "
                                                           f"{_REENCODE}")
    duration = _duration(container, stream)
    if duration is not None and duration > max_duration:
        raise IncompatibleVideo("too_long", f"{name} is {duration:.1f} s long; the limit is {max_duration:g} s: "
                                            "trim it")
    width, height = stream.codec_context.width, stream.codec_context.height
    rotation = _first_frame_rotation(container, stream, name)
    sar = stream.sample_aspect_ratio
    if sar and sar != 1:
        width = max(1, round(width * Fraction(sar)))
    if rotation % 180 == 90:
        width, height = height, width
    if not width or not height:
        raise IncompatibleVideo("not_a_video", f"{name}: the video stream has no picture size")
    end = _check_complete(container, stream, name, size, duration)
    length = end if duration is None else duration
    if length > max_duration:
        raise IncompatibleVideo("too_long", f"{name} is {length:.1f} s long; the limit is {max_duration:g} s: trim it")
    return VideoInfo(width=width, height=height, duration=round(length, 3), size=size, container=kind,
                     video_codec=vcodec, audio_codec=acodecs[0] if acodecs else None, mimetype=mimetype)


def _is_iso_media(head: bytes) -> bool:
    return head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free")


def _container_kind(format_name: str, head: bytes) -> str:
    if format_name.startswith("mov,mp4"):
        return "mov" if head[8:12] == b"qt  " else "mp4"
    if format_name == "matroska,webm":
        return "webm" if b"webm" in head else "Matroska (.mkv)"
    return {"mpegts": "MPEG-TS", "mpeg": "MPEG-PS", "gif": "GIF", "avi": "AVI"}.get(format_name, format_name)


def _duration(container: InputContainer, stream: Any) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration and container.duration > 0:
        return container.duration / 1_000_000
    return None


def _first_frame_rotation(container: InputContainer, stream: Any, name: str) -> int:
    """Decode the first frame (proves the stream decodes); its display-matrix rotation in degrees."""
    import av

    try:
        for count, packet in enumerate(container.demux(stream)):
            for frame in packet.decode():
                return _quarter_turns(frame.rotation)
            if count >= 100:
                break
    except av.FFmpegError as exc:
        raise IncompatibleVideo("truncated", f"{name}: the first frames do not decode ({exc})") from exc
    raise IncompatibleVideo("truncated", f"{name}: no video frame could be decoded: the file is incomplete or damaged")


def _quarter_turns(degrees: float | None) -> int:
    return (round((degrees or 0) / 90) * 90) % 360


def _check_complete(container: InputContainer, stream: Any, name: str, size: int, duration: float | None) -> float:
    """Demux the last packets; return where the video ends (s). A file whose packets stop early,
    come out partial, or whose index points past the end of the file, was cut short."""
    import av

    start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    if duration is not None and duration > 4:
        try:
            container.seek(int((start + duration - 2) / stream.time_base), stream=stream, backward=True)
        except av.FFmpegError:
            logger.debug("%s: cannot seek (no index); demuxing to the end", name)
    ends: dict[int, float] = {}
    expected: float | None
    try:
        for packet in container.demux():
            if not packet.size:
                continue
            if packet.is_corrupt or (packet.pos is not None and packet.pos >= 0 and packet.pos + packet.size > size):
                raise IncompatibleVideo("truncated", f"{name} is cut short: its last packets are missing: "
                                                     "copy or export it again")
            if packet.pts is not None and packet.time_base:
                end = float((packet.pts + (packet.duration or 0)) * packet.time_base) - start
                ends[packet.stream.index] = max(end, ends.get(packet.stream.index, end))
    except av.FFmpegError as exc:
        raise IncompatibleVideo("truncated", f"{name} is damaged near its end ({exc})") from exc
    if stream.index not in ends:
        raise IncompatibleVideo("truncated", f"{name} has no video packets at its end: the file is incomplete")
    if stream.duration:  # the container indexes each stream (MP4): the video must end where it says
        end, expected = ends[stream.index], float(stream.duration * stream.time_base)
        rate = float(stream.average_rate or stream.guessed_rate or 0)
        tolerance = max(0.1, 2 / rate) if rate else 0.5
    else:  # only the whole file's duration is known (WebM): some stream must reach it
        end, expected, tolerance = max(ends.values()), duration, 0.5
    if expected is not None and end < expected - tolerance:
        raise IncompatibleVideo("truncated", f"{name} stops at {end:.1f} s of its {expected:.1f} s: the file is "
                                             "incomplete: copy or export it again")
    return ends[stream.index]


def _read_file(filename: str | os.PathLike[str] | None) -> bytes:
    try:
        return Path(filename or "").read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {filename}: {exc}") from exc


# -- the client side --------------------------------------------------------------------


class VideoMixin(ClientBase):
    """Video uploads for AsyncBskyClient (video service calls go through ``self.http``)."""

    if TYPE_CHECKING:
        async def upload_blob(self, data: bytes, mimetype: str) -> dict[str, Any]: ...

    async def get_service_auth(self, aud: str, lxm: str | None = None, exp: int | None = None) -> str:
        """A token from the account's PDS that ``aud`` accepts as the account (for ``lxm`` only).

        ``exp`` (epoch seconds) must be in the future: within an hour with ``lxm``, within 60 s
        without (the PDS's default is 60 s).
        """
        if exp is not None:
            exp = int(exp)
            ahead = exp - time.time()
            if ahead <= 0 or ahead > (3600 if lxm else 60):
                raise InvalidInput(f"service token exp must be in the future and at most {3600 if lxm else 60} s "
                                   f"ahead{'' if lxm else ' without lxm'}; got {ahead:.0f} s")
        params = {"aud": aud, "lxm": lxm, "exp": exp}
        request = self._request("GET", "com.atproto.server.getServiceAuth", None,
                                {k: v for k, v in params.items() if v is not None}, default_auth=True)
        token: str = (await self.send(request)).raw["token"]
        return token

    async def upload_video(self, video: Video, *, progress: Callable[[int], object] | None = None,
                           timeout: float = 600,  # noqa: ASYNC109 - how long processing may take, not I/O
                           poll_interval: float = 1.0, video_host: str | None = None,
                           video_service_did: str | None = None) -> UploadedVideo:
        """Check, upload and wait for the video service to process a video; nothing is posted.

        Args:
            progress: called with the processing percentage (0-100) whenever it changes.
            timeout: seconds to wait for processing (``VideoProcessingTimeout`` after).
            poll_interval: first wait between ``getJobStatus`` polls (grows to 5 s).
            video_host: the video service (default: the client's ``video_host``, else
                https://video.bsky.app); video_service_did: its DID (default ``did:web:<host>``).

        Raises:
            IncompatibleVideo / InvalidInput: before anything is uploaded.
            VideoUploadRefused, VideoProcessingFailed, VideoProcessingTimeout, APIError, NetworkError.
        """
        if not isinstance(video, Video):
            raise InvalidInput(f"upload_video takes a Video, not {type(video).__name__}")
        caption_data = [(caption.lang, caption.read()) for caption in video.captions]
        info = await anyio.to_thread.run_sync(lambda: check_video(video))
        host = (video_host or getattr(self, "video_host", None) or DEFAULT_VIDEO_HOST).rstrip("/")
        service_did = (video_service_did or getattr(self, "video_service_did", None)
                       or f"did:web:{urlsplit(host).hostname}")
        session = await self.sessions.current()
        await self._check_upload_limits(host, service_did, info)
        token = await self.get_service_auth(f"did:web:{urlsplit(session.pds_endpoint).hostname}",
                                            "com.atproto.repo.uploadBlob", int(time.time()) + 1800)
        status = await self._upload_video_body(host, token, session.did, video, info)
        job_id = str(status.get("jobId") or "")
        blob = status.get("blob")
        if not blob:
            if not job_id:
                raise VideoUploadRefused(str(status.get("message") or status.get("error") or "no job was created"),
                                         error=status.get("error"))
            blob = await self._wait_for_job(host, job_id, status, progress, timeout, poll_interval)
        elif progress is not None:
            progress(100)
        captions = tuple([{"lang": lang, "file": await self.upload_blob(data, "text/vtt")}
                          for lang, data in caption_data])
        return UploadedVideo(blob=dict(blob), info=info, job_id=job_id, alt=video.alt, captions=captions)

    async def get_video_job(self, job_id: str, *, video_host: str | None = None) -> dict[str, Any]:
        """The video service's ``jobStatus`` of a job (no auth)."""
        host = (video_host or getattr(self, "video_host", None) or DEFAULT_VIDEO_HOST).rstrip("/")
        response = await self._video_service(XrpcRequest("GET", "app.bsky.video.getJobStatus", host,
                                                         params={"jobId": job_id}))
        return _job_status(response.raw)

    async def _check_upload_limits(self, host: str, service_did: str, info: VideoInfo) -> None:
        token = await self.get_service_auth(service_did, "app.bsky.video.getUploadLimits")
        request = XrpcRequest("GET", "app.bsky.video.getUploadLimits", host,
                              headers={"Authorization": f"Bearer {token}"})
        limits = (await self._video_service(request)).raw
        if not limits.get("canUpload"):
            raise VideoUploadRefused(str(limits.get("message") or limits.get("error") or "canUpload is false"),
                                     error=limits.get("error"), limits=limits)
        remaining = limits.get("remainingDailyBytes")
        if isinstance(remaining, int) and remaining < info.size:
            raise VideoUploadRefused(f"the video is {info.size:,} bytes but only {remaining:,} bytes of today's "
                                     "upload allowance are left", error="daily_bytes", limits=limits)

    async def _upload_video_body(self, host: str, token: str, did: str, video: Video,
                                 info: VideoInfo) -> dict[str, Any]:
        name = f"{uuid.uuid4().hex}.{'mov' if info.container == 'mov' else info.container}"
        request = XrpcRequest("POST", "app.bsky.video.uploadVideo", host, params={"did": did, "name": name},
                              headers={"Authorization": f"Bearer {token}", "Content-Type": info.mimetype,
                                       "Content-Length": str(info.size)})
        request.extensions["stream"] = (video, info.size)
        response = await self._video_service(request, accept_error=_is_already_exists)
        return _job_status(response.raw)

    async def _video_service(self, request: XrpcRequest,
                             accept_error: Callable[[XrpcResponse], bool] | None = None) -> XrpcResponse:
        writer = getattr(self, "call_log", None)
        chain = build_chain([CallLogMiddleware(writer)] if isinstance(writer, CallLogWriter) else [],
                            _StreamingTransport(self.http))
        response = await chain(request)
        if accept_error is not None and response.is_error and accept_error(response):
            return response
        return raise_for_status(response, request.nsid)

    async def _wait_for_job(self, host: str, job_id: str, status: dict[str, Any],
                            progress: Callable[[int], object] | None, limit: float,
                            poll_interval: float) -> dict[str, Any]:
        last: list[int | None] = [None]

        def report(value: Any) -> None:
            if progress is not None and isinstance(value, int) and value != last[0]:
                last[0] = value
                progress(value)

        delay, polled = poll_interval, False
        with anyio.move_on_after(limit):
            while True:
                report(status.get("progress"))
                if status.get("blob"):
                    report(100)
                    return dict(status["blob"])
                if status.get("state") == "JOB_STATE_FAILED":
                    raise VideoProcessingFailed(job_id, status.get("failureCode"), status.get("message"),
                                                status.get("error"))
                if status.get("state") == "JOB_STATE_COMPLETED" and polled:
                    raise VideoProcessingFailed(job_id, "generic_failure", "the job completed without a blob",
                                                status.get("error"))
                if polled or status.get("state") != "JOB_STATE_COMPLETED":
                    await anyio.sleep(delay)
                    delay = min(delay * 1.5, max(poll_interval, 5.0))
                try:
                    status, polled = await self.get_video_job(job_id, video_host=host), True
                except (ServerError, RateLimitExceeded, NetworkError) as exc:
                    logger.warning("video job %s: polling failed (%s); trying again", job_id, exc)
        raise VideoProcessingTimeout(job_id, limit, status.get("state"), status.get("progress"))


def _is_already_exists(response: XrpcResponse) -> bool:
    status = _job_status(response.raw)
    return status.get("error") == "already_exists" and bool(status.get("jobId") or status.get("blob"))


def _job_status(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The JobStatus of a response that may be bare or wrapped in ``{"jobStatus": ...}``."""
    inner = raw.get("jobStatus")
    return dict(inner) if isinstance(inner, Mapping) else dict(raw)


class _StreamingTransport:
    """Like HttpxTransport, to a non-PDS host; ``extensions["stream"]`` (a Video) is streamed as the body."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def __call__(self, request: XrpcRequest) -> XrpcResponse:
        if request.host == AUTH:
            raise RuntimeError("video service calls need an explicit host")
        url = f"{request.host}/xrpc/{request.nsid}"
        request.extensions["url"] = url
        stream: tuple[Video, int] | None = request.extensions.get("stream")
        body = _chunks(*stream) if stream is not None else None
        try:
            response = await self.http.request(
                request.method, url, params={k: v for k, v in request.params.items() if v is not None},
                content=body, headers=request.headers,
                timeout=httpx.Timeout(60.0, read=300.0) if body is not None else httpx.USE_CLIENT_DEFAULT)
        except httpx.TimeoutException as exc:
            raise RequestTimeout(f"{request.nsid} to {request.host} timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise NetworkError(f"{request.nsid} to {request.host} failed before any answer: {exc!r}") from exc
        finally:
            if body is not None:
                await body.aclose()
        return XrpcResponse.from_httpx(response)


async def _chunks(video: Video, size: int) -> AsyncGenerator[bytes, None]:
    """The first ``size`` bytes (what was checked and announced) in 1 MiB pieces, read from disk
    in a worker thread: the file is never in memory all at once."""
    if video.data is not None:
        view = memoryview(video.data)[:size]
        for offset in range(0, len(view), UPLOAD_CHUNK):
            yield bytes(view[offset:offset + UPLOAD_CHUNK])
        return
    left = size
    async with await anyio.open_file(video.filename or "", "rb") as file:
        while left > 0:
            chunk = await file.read(min(UPLOAD_CHUNK, left))
            if not chunk:
                raise InvalidInput(f"{video.name} got shorter while it was being uploaded")
            left -= len(chunk)
            yield chunk


__all__ = [
    "Caption", "IncompatibleVideo", "UploadedVideo", "Video", "VideoInfo", "VideoMixin", "VideoProcessingFailed",
    "VideoProcessingTimeout", "VideoUploadRefused", "check_video", "video_embed",
]
