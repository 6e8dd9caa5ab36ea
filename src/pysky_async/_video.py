"""Videos: check a file locally, upload it to Bluesky's video service, build the embed.

``info = check_video(Video(filename="clip.mp4"))`` (synchronous, CPU: run it in a thread) or
``uploaded = await bsky.upload_video(Video(filename="clip.mp4", alt="..."))`` then
``video_embed(uploaded)`` for an ``app.bsky.embed.video`` record field.

What passes ``check_video`` (MP4/MOV with H.264 and AAC, WebM...) is described in ``_video_check``.

Uploads follow the video service's wire format: a service token from the account's PDS
(``com.atproto.server.getServiceAuth``) for ``getUploadLimits`` and for ``uploadVideo`` (whose
token, aud = the PDS's ``did:web``, lets the service store the blob on the PDS as the account),
the body streamed from disk, then ``getJobStatus`` polled (no auth) until the job completes.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio
import httpx

from ._config import DEFAULT_VIDEO_HOST
from ._exceptions import (
    IncompatibleVideo,
    InvalidInput,
    NetworkError,
    RateLimitExceeded,
    ServerError,
    VideoProcessingFailed,
    VideoProcessingTimeout,
    VideoUploadRefused,
)
from ._middleware import NO_ACCOUNT
from ._request import XrpcRequest
from ._response import XrpcResponse, raise_for_status

if TYPE_CHECKING:
    from ._account import Account
    from ._records import Records
    from ._xrpc import Xrpc

from ._video_check import (
    Caption,
    Video,
    VideoInfo,
    check_video,
)

logger = logging.getLogger("pysky_async")

UPLOAD_CHUNK = 1 << 20


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


# -- the client side --------------------------------------------------------------------


class Videos:
    """Video uploads through Bluesky's video service (``bsky.video``); every call goes through
    the client's pipeline (the video service's skip the session and the write budget).

    Args:
        xrpc: how calls are made. sessions: the account. records: uploads caption blobs.
        video_host / video_service_did: the default video service and its DID.
    """

    def __init__(self, xrpc: Xrpc, sessions: Account, records: Records, *,
                 video_host: str = DEFAULT_VIDEO_HOST, video_service_did: str | None = None) -> None:
        self._xrpc = xrpc
        self._sessions = sessions
        self._records = records
        self.video_host = video_host
        self.video_service_did = video_service_did

    async def upload(self, video: Video, *, progress: Callable[[int], object] | None = None,
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
        host = (video_host or self.video_host).rstrip("/")
        service_did = video_service_did or self.video_service_did or f"did:web:{urlsplit(host).hostname}"
        session = await self._sessions.current()
        await self._check_upload_limits(host, service_did, info)
        token = await self._xrpc.service_auth(f"did:web:{urlsplit(session.pds_endpoint).hostname}",
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
        captions = tuple([{"lang": lang, "file": await self._records.upload_blob(data, "text/vtt")}
                          for lang, data in caption_data])
        return UploadedVideo(blob=dict(blob), info=info, job_id=job_id, alt=video.alt, captions=captions)

    async def get_job(self, job_id: str, *, video_host: str | None = None) -> dict[str, Any]:
        """The video service's ``jobStatus`` of a job (no auth)."""
        host = (video_host or self.video_host).rstrip("/")
        response = await self._video_service(XrpcRequest("GET", "app.bsky.video.getJobStatus", host,
                                                         params={"jobId": job_id}, skip=NO_ACCOUNT))
        return _job_status(response.raw)

    async def _check_upload_limits(self, host: str, service_did: str, info: VideoInfo) -> None:
        token = await self._xrpc.service_auth(service_did, "app.bsky.video.getUploadLimits")
        request = XrpcRequest("GET", "app.bsky.video.getUploadLimits", host, skip=NO_ACCOUNT,
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
                                       "Content-Length": str(info.size)},
                              content=_chunks(video, info.size), skip=NO_ACCOUNT)
        request.context.timeout = httpx.Timeout(60.0, read=300.0)
        request.context.upload_size = info.size
        response = await self._video_service(request, accept_error=_is_already_exists)
        return _job_status(response.raw)

    async def _video_service(self, request: XrpcRequest,
                             accept_error: Callable[[XrpcResponse], bool] | None = None) -> XrpcResponse:
        response = await self._xrpc.send_unchecked(request)
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
                    status, polled = await self.get_job(job_id, video_host=host), True
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


async def _chunks(video: Video, size: int) -> AsyncGenerator[bytes, None]:
    """The first ``size`` bytes (what was checked and announced) in 1 MiB pieces, read from disk
    in a worker thread: the file is never in memory all at once."""
    if video.data is not None:
        view = memoryview(video.data)[:size]
        for offset in range(0, len(view), UPLOAD_CHUNK):
            yield bytes(view[offset:offset + UPLOAD_CHUNK])
        return
    left = size
    # closed synchronously in ``finally``: also when the generator is cancelled mid-read or only
    # finalised by the garbage collector (an async close could be interrupted and leak the file)
    file = open(video.filename or "", "rb")  # noqa: ASYNC230
    try:
        while left > 0:
            chunk = await anyio.to_thread.run_sync(file.read, min(UPLOAD_CHUNK, left))
            if not chunk:
                raise InvalidInput(f"{video.name} got shorter while it was being uploaded")
            left -= len(chunk)
            yield chunk
    finally:
        file.close()


__all__ = [
    "Caption", "IncompatibleVideo", "UploadedVideo", "Video", "VideoInfo", "Videos", "VideoProcessingFailed",
    "VideoProcessingTimeout", "VideoUploadRefused", "check_video", "video_embed",
]
