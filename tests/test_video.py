"""Videos: local checks (PyAV), uploads to the fake video service, posts on the real reference PDS."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from pysky_async import AsyncBskyClient, AuthenticationRequired, InvalidInput
from pysky_async import _video as video_module
from pysky_async._video import (
    Caption,
    IncompatibleVideo,
    UploadedVideo,
    Video,
    VideoInfo,
    VideoProcessingFailed,
    VideoProcessingTimeout,
    VideoUploadRefused,
    check_video,
    video_embed,
)

from . import videos
from .realnet.fake_video_service import FAILURE_CODES, FakeVideoService
from .realnet.pds import Account, PdsServer
from .test_pds_sessions import listen_host

POST = "app.bsky.feed.post"
VTT = b"WEBVTT\n\n00:00.000 --> 00:01.000\nhello\n"


VideoClient = AsyncBskyClient

# -- check_video: no network ---------------------------------------------------------------

GOOD: list[tuple[Callable[[Path], Path], dict[str, Any]]] = [
    (videos.h264_aac_mp4, {"width": 64, "height": 48, "container": "mp4", "video_codec": "h264",
                           "audio_codec": "aac", "mimetype": "video/mp4"}),
    (videos.h264_mp4_without_audio, {"width": 64, "height": 48, "audio_codec": None}),
    (videos.rotated_mp4, {"width": 48, "height": 64, "video_codec": "h264"}),
    (lambda d: videos.rotated_mp4(d, 270), {"width": 48, "height": 64}),
    (lambda d: videos.rotated_mp4(d, 180), {"width": 64, "height": 48}),
    (videos.vp9_webm, {"width": 64, "height": 48, "container": "webm", "video_codec": "vp9",
                       "audio_codec": "opus", "mimetype": "video/webm"}),
]


@pytest.mark.parametrize(("make", "expected"), GOOD, ids=["h264-aac", "h264-silent", "rot90", "rot270", "rot180",
                                                          "vp9-webm"])
def test_check_video_accepts(tmp_path: Path, make: Callable[[Path], Path], expected: dict[str, Any]) -> None:
    path = make(tmp_path)
    info = check_video(Video(filename=path))
    assert {key: getattr(info, key) for key in expected} == expected
    assert abs(info.duration - 2.0) < 0.1 and info.size == path.stat().st_size
    assert info.aspect_ratio == {"width": info.width, "height": info.height}
    assert check_video(Video(data=path.read_bytes())) == info, "bytes in memory are checked the same way"


BAD: list[tuple[Callable[[Path], Path], str]] = [
    (videos.hevc_mp4, "hevc"),
    (videos.mpeg4_part2_mp4, "mpeg4_part2"),
    (videos.audio_only_mp4, "audio_only"),
    (videos.truncated_mp4, "truncated"),
    (lambda d: videos.truncated_mp4(d, faststart=True), "truncated"),
    (lambda d: videos.truncated_mp4(d, 0.95, faststart=True), "truncated"),
    (videos.text_as_mp4, "not_a_video"),
    (videos.mpegts, "unsupported_container"),
    (videos.matroska_mkv, "unsupported_container"),
]
BAD_IDS = ["hevc", "mpeg4-part2", "audio-only", "truncated-moov-last", "truncated-faststart", "cut-last-5%",
           "text", "mpeg-ts", "mkv"]


@pytest.mark.parametrize(("make", "reason"), BAD, ids=BAD_IDS)
def test_check_video_refuses_with_the_reason(tmp_path: Path, make: Callable[[Path], Path], reason: str) -> None:
    path = make(tmp_path)
    with pytest.raises(IncompatibleVideo) as caught:
        check_video(Video(filename=path))
    assert caught.value.reason == reason and f"[{reason}]" in str(caught.value)
    assert isinstance(caught.value, InvalidInput) and isinstance(caught.value, ValueError)
    with pytest.raises(IncompatibleVideo) as from_bytes:
        check_video(path.read_bytes())
    assert from_bytes.value.reason == reason


def test_too_long_too_big_and_empty(tmp_path: Path) -> None:
    path = videos.h264_aac_mp4(tmp_path)
    with pytest.raises(IncompatibleVideo, match="limit is 1 s") as long:
        check_video(path, max_duration=1.0)
    assert long.value.reason == "too_long"
    with pytest.raises(IncompatibleVideo) as big:
        check_video(path, max_bytes=1000)
    assert big.value.reason == "too_big"
    with pytest.raises(IncompatibleVideo) as empty:
        check_video(b"")
    assert empty.value.reason == "empty"
    with pytest.raises(InvalidInput, match="cannot read"):
        check_video(tmp_path / "missing.mp4")


def test_video_and_caption_arguments_are_checked(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="exactly one"):
        Video()
    with pytest.raises(InvalidInput, match="exactly one"):
        Video(filename="a.mp4", data=b"x")
    with pytest.raises(InvalidInput, match="at most 20"):
        Video(data=b"x", captions=[Caption("en", data=VTT)] * 21)
    with pytest.raises(InvalidInput, match="not WebVTT"):
        Caption("en", data=b"1\n00:00:00,000 --> 00:00:01,000\nSRT\n").read()
    with pytest.raises(InvalidInput, match="20000 at most"):
        Caption("en", data=VTT + b"x" * 20_000).read()
    (tmp_path / "en.vtt").write_bytes(VTT)
    assert Caption("en", filename=tmp_path / "en.vtt").read() == VTT


def test_video_embed_shape() -> None:
    info = VideoInfo(48, 64, 2.0, 100, "mp4", "h264", "aac", "video/mp4")
    blob = {"$type": "blob", "ref": {"$link": "bafk"}, "mimeType": "video/mp4", "size": 100}
    caption = {"lang": "en", "file": {"$type": "blob", "ref": {"$link": "bafc"}, "mimeType": "text/vtt", "size": 9}}
    uploaded = UploadedVideo(blob, info, "job1", alt="a cat", captions=(caption,))
    assert video_embed(uploaded) == {"$type": "app.bsky.embed.video", "video": blob, "alt": "a cat",
                                     "aspectRatio": {"width": 48, "height": 64}, "captions": [caption]}
    assert video_embed(uploaded, Video(data=b"x", alt="other"), [])["alt"] == "other"
    assert "captions" not in video_embed(uploaded, "x", [])


# -- uploads: the fake service + the real PDS ----------------------------------------------

@pytest.fixture
async def fake(pds: PdsServer) -> AsyncIterator[FakeVideoService]:
    async with FakeVideoService(plc_url=pds.plc_url, step_delay=0.01) as service:
        yield service


@pytest.fixture
async def bsky(pds: PdsServer, pds_account: Account, tmp_path: Path) -> AsyncIterator[VideoClient]:
    client = VideoClient(username=pds_account.handle, password=pds_account.password, auth_host=listen_host(pds),
                         plc_directory=pds.plc_url, database_url=f"sqlite+aiosqlite:///{tmp_path}/video.sqlite3",
                         auto_migrate=True)
    async with client:
        yield client


async def upload(bsky: VideoClient, fake: FakeVideoService, video: Video, **kwargs: Any) -> UploadedVideo:
    kwargs.setdefault("poll_interval", 0.01)
    uploaded: UploadedVideo = await bsky.upload_video(
        video, video_host=fake.url, video_service_did=fake.service_did, **kwargs)
    return uploaded


async def posts(bsky: VideoClient) -> list[Any]:
    return await bsky.list_records(POST).collect()


@pytest.mark.anyio
@pytest.mark.parametrize("rotated", [False, True], ids=["plain", "rotated90"])
async def test_video_uploads_and_the_post_round_trips(bsky: VideoClient, fake: FakeVideoService,
                                                      pds_account: Account, tmp_path: Path, rotated: bool) -> None:
    path = videos.rotated_mp4(tmp_path) if rotated else videos.h264_aac_mp4(tmp_path)
    seen: list[int] = []
    video = Video(filename=path, alt="noise", captions=[Caption("en", data=VTT)])
    uploaded = await upload(bsky, fake, video, progress=seen.append)
    [received] = fake.uploads
    assert (received.size, received.content_type, received.did) == (path.stat().st_size, "video/mp4", pds_account.did)
    assert received.name.endswith(".mp4") and path.name not in received.name, "a random name, not the local one"
    assert seen == sorted(set(seen)) and seen[-1] == 100 and len(seen) > 2, seen
    assert uploaded.blob["mimeType"] == "video/mp4" and uploaded.blob["size"] == path.stat().st_size
    ref = await bsky.create_record(POST, {"text": "a video", "createdAt": "2026-11-20T10:00:00.000Z",
                                          "embed": video_embed(uploaded)})
    record = await bsky.get_record(ref.uri)
    embed = record.value.raw["embed"]
    assert embed["$type"] == "app.bsky.embed.video" and embed["alt"] == "noise"
    assert embed["aspectRatio"] == ({"width": 48, "height": 64} if rotated else {"width": 64, "height": 48})
    assert embed["video"]["ref"] == uploaded.blob["ref"]
    assert embed["captions"][0]["lang"] == "en" and embed["captions"][0]["file"]["mimeType"] == "text/vtt"
    stored = await bsky.get_blob(pds_account.did, embed["video"]["ref"]["$link"])
    assert stored == path.read_bytes(), "the fake stored the very bytes on the real PDS"
    await bsky.flush_call_log()
    rows = await bsky.store.execute_sql("SELECT hostname, endpoint, http_status_code FROM bsky_api_call_log "
                                        "WHERE endpoint LIKE 'app.bsky.video.%' ORDER BY id")
    logged = [tuple(row) for row in rows]
    service = fake.url.split("://")[1]
    assert logged[:2] == [(service, "app.bsky.video.getUploadLimits", 200),
                          (service, "app.bsky.video.uploadVideo", 200)], "video service calls are in the call log"
    assert {row[1] for row in logged[2:]} == {"app.bsky.video.getJobStatus"}


@pytest.mark.anyio
@pytest.mark.parametrize(("make", "reason"), BAD, ids=BAD_IDS)
async def test_bad_videos_are_refused_before_any_upload(bsky: VideoClient, fake: FakeVideoService, tmp_path: Path,
                                                       make: Callable[[Path], Path], reason: str) -> None:
    with pytest.raises(IncompatibleVideo) as caught:
        await upload(bsky, fake, Video(filename=make(tmp_path)))
    assert caught.value.reason == reason
    assert fake.uploads == [] and fake.requests == [], "nothing reached the video service"


@pytest.mark.anyio
async def test_can_upload_false_is_refused_with_the_service_message(bsky: VideoClient, fake: FakeVideoService,
                                                                   tmp_path: Path) -> None:
    fake.can_upload, fake.limits_message = False, "User has exceeded daily upload videos limit"
    with pytest.raises(VideoUploadRefused, match="exceeded daily upload videos limit") as caught:
        await upload(bsky, fake, Video(filename=videos.h264_aac_mp4(tmp_path)))
    assert caught.value.limits["canUpload"] is False
    fake.can_upload, fake.remaining_daily_bytes = True, 100
    with pytest.raises(VideoUploadRefused, match="only 100 bytes"):
        await upload(bsky, fake, Video(filename=videos.h264_aac_mp4(tmp_path)))
    assert fake.uploads == [] and fake.requests == ["app.bsky.video.getUploadLimits"] * 2


@pytest.mark.anyio
@pytest.mark.parametrize("code", FAILURE_CODES)
async def test_each_failure_code_raises_processing_failed(bsky: VideoClient, fake: FakeVideoService,
                                                          tmp_path: Path, code: str) -> None:
    fake.failure_code = code
    with pytest.raises(VideoProcessingFailed) as caught:
        await upload(bsky, fake, Video(filename=videos.h264_aac_mp4(tmp_path)))
    assert caught.value.failure_code == code and caught.value.job_id == fake.uploads[0].job_id
    assert f"fake {code}" in str(caught.value)
    assert await posts(bsky) == []


@pytest.mark.anyio
async def test_a_job_that_never_finishes_times_out_cleanly(bsky: VideoClient, fake: FakeVideoService,
                                                           tmp_path: Path) -> None:
    fake.never_finish = True
    started = time.monotonic()
    with pytest.raises(VideoProcessingTimeout) as caught:
        await upload(bsky, fake, Video(filename=videos.h264_aac_mp4(tmp_path)), timeout=0.5)
    assert 0.5 <= time.monotonic() - started < 5
    assert (caught.value.state, caught.value.progress) == ("JOB_STATE_ENCODING", 42)
    assert isinstance(caught.value, TimeoutError) and await posts(bsky) == []


@pytest.mark.anyio
async def test_cancelling_the_wait_leaves_nothing_behind(bsky: VideoClient, fake: FakeVideoService,
                                                         tmp_path: Path) -> None:
    fake.never_finish = True
    task = asyncio.ensure_future(upload(bsky, fake, Video(filename=videos.h264_aac_mp4(tmp_path)), timeout=60))
    for _ in range(500):
        if any(job.state == "JOB_STATE_ENCODING" for job in fake.jobs.values()):
            break
        await asyncio.sleep(0.01)
    polls = fake.requests.count("app.bsky.video.getJobStatus")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.1)
    assert fake.requests.count("app.bsky.video.getJobStatus") <= polls + 1, "polling stopped"
    assert await posts(bsky) == [], "no post was made"
    fake.never_finish = False
    uploaded = await upload(bsky, fake, Video(filename=videos.h264_aac_mp4(tmp_path, "other.mp4", seconds=1.0)))
    assert uploaded.blob["size"] > 0, "the client is still usable"


@pytest.mark.anyio
async def test_cancelling_during_the_upload_stops_streaming(bsky: VideoClient, fake: FakeVideoService,
                                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = videos.h264_aac_mp4(tmp_path, seconds=10.0)
    monkeypatch.setattr(video_module, "UPLOAD_CHUNK", 1024)
    sent: list[int] = []
    streaming = asyncio.Event()
    real_chunks = video_module._chunks

    async def slow_chunks(video: Video, size: int) -> AsyncIterator[bytes]:
        async with contextlib.aclosing(real_chunks(video, size)) as chunks:  # its file closes with us
            async for chunk in chunks:
                sent.append(len(chunk))
                if len(sent) == 5:
                    streaming.set()
                await asyncio.sleep(0.005)
                yield chunk

    monkeypatch.setattr(video_module, "_chunks", slow_chunks)
    task = asyncio.ensure_future(upload(bsky, fake, Video(filename=path)))
    await asyncio.wait_for(streaming.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.1)
    assert sum(sent) < path.stat().st_size and fake.uploads == [] and fake.jobs == {}
    assert await posts(bsky) == []


@pytest.mark.anyio
@pytest.mark.parametrize(("status", "with_blob"), [(409, True), (409, False), (200, False)],
                         ids=["409-with-blob", "409-poll-for-blob", "200-poll-for-blob"])
async def test_already_exists_reuses_the_job(bsky: VideoClient, fake: FakeVideoService, tmp_path: Path,
                                             status: int, with_blob: bool) -> None:
    path = videos.h264_aac_mp4(tmp_path)
    first = await upload(bsky, fake, Video(filename=path))
    fake.already_exists_status, fake.already_exists_with_blob = status, with_blob
    second = await upload(bsky, fake, Video(filename=path))
    assert [u.already_exists for u in fake.uploads] == [False, True]
    assert (second.job_id, second.blob) == (first.job_id, first.blob) and len(fake.jobs) == 1
    assert (fake.requests.count("app.bsky.video.getJobStatus") > 0) or with_blob


@pytest.mark.anyio
async def test_wrapped_upload_response_and_bytes_in_memory(bsky: VideoClient, fake: FakeVideoService,
                                                          tmp_path: Path) -> None:
    fake.wrap_upload_response = True
    data = videos.h264_aac_mp4(tmp_path).read_bytes()
    uploaded = await upload(bsky, fake, Video(data=data))
    assert uploaded.blob["size"] == len(data) and fake.uploads[0].size == len(data)


@pytest.mark.anyio
async def test_the_body_is_streamed_in_chunks(bsky: VideoClient, fake: FakeVideoService, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    path = videos.h264_aac_mp4(tmp_path, seconds=5.0)
    monkeypatch.setattr(video_module, "UPLOAD_CHUNK", 4096)
    real_chunks = video_module._chunks
    pieces: list[int] = []

    async def counting(video: Video, size: int) -> AsyncIterator[bytes]:
        async with contextlib.aclosing(real_chunks(video, size)) as chunks:  # its file closes with us
            async for chunk in chunks:
                pieces.append(len(chunk))
                await asyncio.sleep(0)
                yield chunk

    monkeypatch.setattr(video_module, "_chunks", counting)
    await upload(bsky, fake, Video(filename=path))
    size = path.stat().st_size
    assert max(pieces) == 4096 and sum(pieces) == size and len(pieces) == -(-size // 4096)
    assert fake.uploads[0].size == size and fake.uploads[0].chunks > 1


# -- service tokens ----------------------------------------------------------------------


def _token_with(token: str, **claims: Any) -> str:
    header, payload, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged = base64.urlsafe_b64encode(json.dumps({**decoded, **claims}).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


@pytest.mark.anyio
async def test_the_fake_verifies_service_tokens(bsky: VideoClient, fake: FakeVideoService) -> None:
    get_service_auth = bsky.get_service_auth
    limits_url = f"{fake.url}/xrpc/app.bsky.video.getUploadLimits"
    good = await get_service_auth(fake.service_did, "app.bsky.video.getUploadLimits")
    other_lxm = await get_service_auth(fake.service_did, "app.bsky.video.getJobStatus")
    other_aud = await get_service_auth("did:web:elsewhere.example", "app.bsky.video.getUploadLimits")
    no_lxm = await get_service_auth(fake.service_did)
    async with httpx.AsyncClient() as http:
        async def status(token: str | None) -> int:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            return (await http.get(limits_url, headers=headers)).status_code

        assert await status(good) == 200
        assert await status(other_lxm) == 401
        assert await status(other_aud) == 401
        assert await status(no_lxm) == 401
        assert await status(None) == 401
        assert await status(_token_with(good, exp=int(time.time()) + 3000)) == 401, "the signature covers the claims"
        assert await status(good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")) == 401
    assert any("lxm" in r for r in fake.rejected_tokens) and any("aud" in r for r in fake.rejected_tokens)
    assert any("signature" in r for r in fake.rejected_tokens)


@pytest.mark.anyio
async def test_a_wrong_service_did_is_rejected_by_the_fake(bsky: VideoClient, fake: FakeVideoService,
                                                           tmp_path: Path) -> None:
    with pytest.raises(AuthenticationRequired) as caught:
        await bsky.upload_video(Video(filename=videos.h264_aac_mp4(tmp_path)),
                                video_host=fake.url, video_service_did="did:web:wrong.example")
    assert caught.value.status_code == 401 and fake.uploads == []


@pytest.mark.anyio
async def test_service_auth_expiry_is_checked_before_asking(bsky: VideoClient, pds: PdsServer) -> None:
    get_service_auth = bsky.get_service_auth
    before = pds.request_count("com.atproto.server.getServiceAuth")
    now = int(time.time())
    with pytest.raises(InvalidInput, match="at most 3600 s"):
        await get_service_auth("did:web:video.bsky.app", "app.bsky.video.getUploadLimits", now + 4000)
    with pytest.raises(InvalidInput, match="at most 60 s ahead without lxm"):
        await get_service_auth("did:web:video.bsky.app", None, now + 120)
    with pytest.raises(InvalidInput, match="in the future"):
        await get_service_auth("did:web:video.bsky.app", "app.bsky.video.getUploadLimits", now - 5)
    assert pds.request_count("com.atproto.server.getServiceAuth") == before
    token = await get_service_auth("did:web:video.bsky.app", "com.atproto.repo.uploadBlob", now + 1800)
    payload = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert payload["exp"] == now + 1800 and payload["lxm"] == "com.atproto.repo.uploadBlob"
    assert payload["aud"] == "did:web:video.bsky.app" and payload["iss"] == bsky.did


@pytest.mark.anyio
async def test_create_post_with_a_video_waits_for_processing_then_posts(
        pds: PdsServer, pds_account: Account, fake: FakeVideoService, tmp_path: Path) -> None:
    from pysky_async import AsyncBskyClient, Post

    async with AsyncBskyClient(username=pds_account.handle, password=pds_account.password,
                               auth_host=listen_host(pds), plc_directory=pds.plc_url,
                               database_url=f"sqlite+aiosqlite:///{tmp_path}/post.sqlite3",
                               video_host=fake.url, video_service_did=fake.service_did) as client:
        with pytest.raises(IncompatibleVideo, match="HEVC"):
            await client.create_post(post=Post("bad").add(Video(filename=videos.hevc_mp4(tmp_path))))
        assert fake.uploads == [] and await client.list_records(POST).collect() == []
        ref = await client.create_post(post=Post("a rotated video #clip").add(
            Video(filename=videos.rotated_mp4(tmp_path), alt="turned")))
        record = await client.get_record(ref.uri)
    embed = record.value.raw["embed"]
    assert embed["$type"] == "app.bsky.embed.video" and embed["alt"] == "turned"
    assert embed["aspectRatio"] == {"width": 48, "height": 64}
    assert record.value.raw["facets"][0]["features"][0]["tag"] == "clip"
    assert len(fake.uploads) == 1
