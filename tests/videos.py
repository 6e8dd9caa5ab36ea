"""Small test videos made with PyAV in a directory you pass (``tmp_path``); each call takes well under a second.

Every generator returns the path it wrote. The frames are noise (so truncating a file really
cuts into the samples) at 64x48, 10 fps, 2 s unless asked otherwise; audio is silence.

Rotation: PyAV 18 writes a display matrix itself (``VideoStream.set_display_rotation``), which
the MP4 muxer stores in the ``tkhd`` matrix — no byte patching needed.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path
from typing import Any

import av

__all__ = [
    "audio_only_mp4", "big_h264_mp4", "h264_aac_mp4", "h264_mp4_without_audio", "hevc_mp4", "make_video",
    "matroska_mkv", "mpeg4_part2_mp4", "mpegts", "pad_with_free_box", "rotated_mp4", "text_as_mp4",
    "truncated_mp4", "vp9_webm",
]

_AUDIO_RATES = {"libopus": 48000}
_AUDIO_FRAME = {"libopus": 960}
_QUIET = {"libx264": {"x264-params": "log-level=error"}, "libx265": {"x265-params": "log-level=error"}}


def make_video(path: Path, *, vcodec: str | None = "libx264", acodec: str | None = "aac", width: int = 64,
               height: int = 48, fps: int = 10, seconds: float = 2.0, rotation: int | None = None,
               container_format: str | None = None, options: dict[str, str] | None = None,
               codec_options: dict[str, str] | None = None, noise: bool = True) -> Path:
    """Encode a video (and/or silent audio) to ``path``; ``vcodec``/``acodec`` None leaves that stream out."""
    with av.open(str(path), "w", format=container_format, options=options or {}) as out:
        video: Any = None
        audio: Any = None
        if vcodec:
            video = out.add_stream(vcodec, rate=fps, options={**_QUIET.get(vcodec, {}), **(codec_options or {})})
            video.width, video.height, video.pix_fmt = width, height, "yuv420p"
            if rotation is not None:
                video.set_display_rotation(rotation)
        if acodec:
            audio = out.add_stream(acodec, rate=_AUDIO_RATES.get(acodec, 22050))
            audio.layout = "mono"
        if video is not None:
            _encode_frames(out, video, width, height, round(fps * seconds), noise)
        if audio is not None:
            _encode_silence(out, audio, seconds, _AUDIO_FRAME.get(acodec or "", 1024))
    return path


def _encode_frames(out: Any, stream: Any, width: int, height: int, count: int, noise: bool) -> None:
    rng = random.Random(width * 7919 + height)
    pattern = bytes(range(256)) * (width * height // 256 + 2)
    for index in range(count):
        frame = av.VideoFrame(width, height, "yuv420p")
        luma, *chroma = frame.planes
        if noise:
            luma.update(rng.randbytes(luma.buffer_size))
        else:  # a moving gradient: cheap to make and to encode, even at 1080p
            shift = (index * 4) % 256
            luma.update(pattern[shift:shift + luma.buffer_size])
        for plane in chroma:
            plane.update(bytes([128]) * plane.buffer_size)
        frame.pts = index
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)


def _encode_silence(out: Any, stream: Any, seconds: float, samples: int) -> None:
    total, pts = int(stream.rate * seconds), 0
    while pts < total:
        frame = av.AudioFrame(format="fltp", layout="mono", samples=samples)
        frame.planes[0].update(bytes(frame.planes[0].buffer_size))
        frame.sample_rate, frame.pts = stream.rate, pts
        pts += samples
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)


def h264_aac_mp4(directory: Path, name: str = "good.mp4", **kwargs: Any) -> Path:
    """The good case: H.264 + AAC in MP4."""
    return make_video(directory / name, **kwargs)


def h264_mp4_without_audio(directory: Path) -> Path:
    return make_video(directory / "silent.mp4", acodec=None)


def rotated_mp4(directory: Path, degrees: int = 90) -> Path:
    """64x48 coded, with a display matrix rotating it ``degrees`` counter-clockwise (shown 48x64)."""
    return make_video(directory / f"rotated{degrees}.mp4", rotation=degrees)


def hevc_mp4(directory: Path) -> Path:
    return make_video(directory / "hevc.mp4", vcodec="libx265")


def mpeg4_part2_mp4(directory: Path) -> Path:
    return make_video(directory / "mpeg4.mp4", vcodec="mpeg4")


def audio_only_mp4(directory: Path) -> Path:
    return make_video(directory / "audio.mp4", vcodec=None)


def vp9_webm(directory: Path) -> Path:
    return make_video(directory / "clip.webm", vcodec="libvpx-vp9", acodec="libopus")


def matroska_mkv(directory: Path) -> Path:
    return make_video(directory / "clip.mkv")


def mpegts(directory: Path) -> Path:
    return make_video(directory / "clip.ts", container_format="mpegts")


def truncated_mp4(directory: Path, fraction: float = 0.4, *, faststart: bool = False) -> Path:
    """The first ``fraction`` of a good MP4's bytes. Without faststart the index (moov) is at the
    end and is lost; with it the index survives but points past the end of the file."""
    source = make_video(directory / f"whole-{faststart}.mp4",
                        options={"movflags": "faststart"} if faststart else None)
    data = source.read_bytes()
    path = directory / f"truncated-{faststart}.mp4"
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def text_as_mp4(directory: Path) -> Path:
    path = directory / "notes.mp4"
    path.write_text("This is not a video.\nJust some notes that someone named .mp4.\n" * 20)
    return path


def pad_with_free_box(path: Path, total_size: int) -> Path:
    """Append an MP4 ``free`` box (skipped by every reader) so the file is ``total_size`` bytes.

    Written in 1 MiB pieces: makes a large valid upload without holding it in memory.
    """
    pad = total_size - path.stat().st_size
    if pad < 8:
        raise ValueError(f"{path} is already {path.stat().st_size} bytes")
    with path.open("ab") as file:
        file.write(struct.pack(">I4s", pad, b"free"))
        pad -= 8
        piece = bytes(1 << 20)
        while pad > 0:
            file.write(piece[: min(pad, len(piece))])
            pad -= len(piece)
    return path


def big_h264_mp4(path: Path, *, seconds: float = 60.0, width: int = 1920, height: int = 1080,
                 fps: int = 30) -> Path:
    """A long full-HD H.264/AAC file for benchmarks (ultrafast preset, moving gradient)."""
    return make_video(path, width=width, height=height, fps=fps, seconds=seconds, noise=False,
                      codec_options={"preset": "ultrafast"})
