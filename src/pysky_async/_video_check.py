"""Checking a video locally before any upload (PyAV, synchronous: run it in a worker thread).

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
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._exceptions import IncompatibleVideo, InvalidInput
from ._optional import require_media

if TYPE_CHECKING:
    from av.container import InputContainer

logger = logging.getLogger("pysky_async")

MAX_VIDEO_BYTES = 300_000_000
MAX_VIDEO_SECONDS = 600.0
MAX_CAPTION_BYTES = 20_000
MAX_CAPTIONS = 20

_ACCEPTED: dict[str, tuple[frozenset[str], frozenset[str], str]] = {
    "mp4": (frozenset({"h264"}), frozenset({"aac"}), "video/mp4"),
    "mov": (frozenset({"h264"}), frozenset({"aac"}), "video/quicktime"),
    "webm": (frozenset({"vp8", "vp9", "av1"}), frozenset({"opus", "vorbis"}), "video/webm"),
}
_REENCODE = "re-encode it to H.264/AAC MP4, e.g. ffmpeg -i IN -c:v libx264 -c:a aac -movflags +faststart OUT.mp4"
_REMUX = "remux it to MP4 without re-encoding: ffmpeg -i IN -c copy -movflags +faststart OUT.mp4"


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
        require_media("av", "Video")
        if (self.filename is None) == (self.data is None):
            raise InvalidInput("a Video takes filename= or data=, exactly one")
        if len(self.captions) > MAX_CAPTIONS:
            raise InvalidInput(f"a video takes at most {MAX_CAPTIONS} captions, got {len(self.captions)}")
        # no length check on alt: app.bsky.embed.video sets no limit on it since lexicon change #5350
        if self.alt is not None and not isinstance(self.alt, str):
            raise InvalidInput(f"video alt text must be a string, not {type(self.alt).__name__}")

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
    from av.error import FFmpegError  # av's __all__ leaves its error classes out

    try:
        container = av.open(io.BytesIO(video.data) if video.data is not None else os.fspath(video.filename or ""), "r")
    except (FFmpegError, OSError, ValueError) as exc:
        if _is_iso_media(head):
            raise IncompatibleVideo("truncated", f"{video.name} is an incomplete MP4 ({exc}): "
                                                 "copy or export it again") from exc
        raise IncompatibleVideo("not_a_video", f"{video.name} is not a video ({exc})") from exc
    with container:
        return _inspect(container, video.name, size, head, max_duration)


def _inspect(container: InputContainer, name: str, size: int, head: bytes, max_duration: float) -> VideoInfo:
    from av.stream import Disposition

    videos = [s for s in container.streams.video if not s.disposition & Disposition.attached_pic]
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
    from av.error import FFmpegError

    try:
        for count, packet in enumerate(container.demux(stream)):
            for frame in packet.decode():
                return _quarter_turns(frame.rotation)
            if count >= 100:
                break
    except FFmpegError as exc:
        raise IncompatibleVideo("truncated", f"{name}: the first frames do not decode ({exc})") from exc
    raise IncompatibleVideo("truncated", f"{name}: no video frame could be decoded: the file is incomplete or damaged")


def _quarter_turns(degrees: float | None) -> int:
    return (round((degrees or 0) / 90) * 90) % 360


def _check_complete(container: InputContainer, stream: Any, name: str, size: int, duration: float | None) -> float:
    """Demux the last packets; return where the video ends (s). A file whose packets stop early,
    come out partial, or whose index points past the end of the file, was cut short."""
    from av.error import FFmpegError

    start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    if duration is not None and duration > 4:
        try:
            container.seek(int((start + duration - 2) / stream.time_base), stream=stream, backward=True)
        except FFmpegError:
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
    except FFmpegError as exc:
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


