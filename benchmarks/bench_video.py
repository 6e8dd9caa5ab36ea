"""Video benchmarks: ``check_video`` on a 1-minute 1080p H.264 file, and the memory an upload of a
200 MB file takes (the body is streamed from disk, so it should stay far below the file size).

    .venv/bin/python benchmarks/bench_video.py [--runs 5] [--upload-mb 200]

The test files are generated once into ``$TMPDIR/pysky-bench-video`` and reused. The upload goes
to the fake video service (tests/realnet/fake_video_service.py, counting and hashing only, the job
completing at once) with service tokens from the real reference PDS (tests/realnet/pds.py), in a
fresh subprocess that measures its RSS: sampled every 2 ms by a thread, and ``ru_maxrss``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CACHE = Path(tempfile.gettempdir()) / "pysky-bench-video"


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def bench_check(runs: int) -> dict[str, float]:
    from tests.videos import big_h264_mp4

    from pysky_async._video import check_video

    CACHE.mkdir(exist_ok=True)
    path = CACHE / "1080p-60s.mp4"
    generated = 0.0
    if not path.exists():
        started = time.perf_counter()
        big_h264_mp4(CACHE / "partial.mp4", seconds=60.0)
        (CACHE / "partial.mp4").rename(path)
        generated = time.perf_counter() - started
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        info = check_video(path)
        times.append(time.perf_counter() - started)
    assert (info.width, info.height, round(info.duration)) == (1920, 1080, 60), info
    return {"generate_s": generated, "median_ms": statistics.median(times) * 1000, "min_ms": min(times) * 1000,
            "max_ms": max(times) * 1000, "size_mb": path.stat().st_size / 1e6}


def bench_upload(upload_mb: int) -> dict[str, float]:
    from tests.realnet.pds import PdsServer
    from tests.videos import h264_aac_mp4, pad_with_free_box

    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"padded-{upload_mb}mb.mp4"
    if not path.exists():
        pad_with_free_box(h264_aac_mp4(CACHE, "small.mp4"), upload_mb * 1_000_000).rename(path)
    pds = PdsServer.start()
    try:
        account = pds.create_account(f"bench{os.getpid()}.test", "bench-password-1")
        config = {"path": str(path), "size": str(path.stat().st_size), "handle": account.handle,
                  "password": account.password,
                  "auth_host": pds.base_url.replace("localhost", "127.0.0.1"), "plc_url": pds.plc_url,
                  "db": str(CACHE / f"bench-{os.getpid()}.sqlite3")}
        child = subprocess.run([sys.executable, __file__, "--child", json.dumps(config)], capture_output=True,
                               text=True, timeout=600, cwd=ROOT, check=False)
        if child.returncode != 0:
            raise RuntimeError(child.stderr[-3000:])
        result: dict[str, float] = json.loads(child.stdout.strip().splitlines()[-1])
        return result
    finally:
        pds.stop()


async def _child(config: dict[str, str]) -> dict[str, float]:
    from tests.realnet.fake_video_service import FakeVideoService
    from tests.videos import h264_aac_mp4

    from pysky_async import AsyncBskyClient, Video

    path = Path(config["path"])
    size = int(config["size"])
    bsky = AsyncBskyClient(username=config["handle"], password=config["password"], auth_host=config["auth_host"],
                  plc_directory=config["plc_url"], database_url=f"sqlite+aiosqlite:///{config['db']}",
                  auto_migrate=True)
    async with FakeVideoService(plc_url=config["plc_url"], store_on_pds=False) as fake, bsky:
        fake.instant = True
        small = h264_aac_mp4(CACHE, "warmup.mp4", seconds=1.0)
        await bsky.upload_video(Video(filename=small), video_host=fake.url, video_service_did=fake.service_did,
                                poll_interval=0.01)  # warm up: imports, login, connections
        baseline = _rss()
        maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        peak = [baseline]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], _rss())
                time.sleep(0.002)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.perf_counter()
        uploaded = await bsky.upload_video(Video(filename=path), video_host=fake.url,
                                           video_service_did=fake.service_did, poll_interval=0.01)
        elapsed = time.perf_counter() - started
        done.set()
        sampler.join()
        maxrss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        assert fake.uploads[-1].size == size == uploaded.info.size
        return {"file_mb": size / 1e6, "seconds": elapsed, "mb_per_s": size / 1e6 / elapsed,
                "baseline_mb": baseline / 2**20,
                "peak_above_baseline_mb": (peak[0] - baseline) / 2**20,
                "maxrss_before_mb": maxrss_before / 2**20, "maxrss_after_mb": maxrss_after / 2**20,
                "maxrss_above_baseline_mb": max(0, maxrss_after - baseline) / 2**20,
                "chunks_received": fake.uploads[-1].chunks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--upload-mb", type=int, default=200)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(_child(json.loads(args.child)))))
        return
    check = bench_check(args.runs)
    upload = bench_upload(args.upload_mb)
    print("| measurement | result |")
    print("|---|---|")
    if check["generate_s"]:
        print(f"| generate 1080p 60 s H.264/AAC test file (once, cached) | {check['generate_s']:.1f} s |")
    print(f"| `check_video`, 1080p 60 s H.264/AAC ({check['size_mb']:.1f} MB), median of {args.runs} | "
          f"{check['median_ms']:.1f} ms (min {check['min_ms']:.1f}, max {check['max_ms']:.1f}) |")
    print(f"| `upload_video` of a {upload['file_mb']:.0f} MB file to the fake service | {upload['seconds']:.2f} s "
          f"({upload['mb_per_s']:.0f} MB/s, {upload['chunks_received']} network reads at the fake) |")
    print(f"| peak RSS above baseline during that upload (sampled every 2 ms) | "
          f"{upload['peak_above_baseline_mb']:.1f} MB (target < 64 MB) |")
    print(f"| `ru_maxrss` (lifetime peak) before → after the upload | {upload['maxrss_before_mb']:.1f} → "
          f"{upload['maxrss_after_mb']:.1f} MB (after − pre-upload RSS: {upload['maxrss_above_baseline_mb']:.1f} MB, "
          "an upper bound) |")
    print(f"| client process RSS before the upload | {upload['baseline_mb']:.0f} MB |")


if __name__ == "__main__":
    main()
