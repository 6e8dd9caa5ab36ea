"""Typed models (pysky_async.lex) vs today's JsonObject view vs the atproto SDK's models.

    .venv/bin/python benchmarks/bench_models.py [--rounds 15] [--quick]

1. Decode: the same 50-post ``getTimeline`` body (~60 kB: images, links, quotes, replies,
   reposts, labels, facets), decoded by each variant in alternating rounds; the table gives
   the median µs per body of the rounds. "decode + read" also reads six fields of every post
   (a lazy view pays at access time, a Struct up front).
2. Import: in fresh interpreters (alternating), ``import pysky_async.lex`` after
   ``import pysky_async``, and then the modules holding the 20 common types (feed, actor,
   graph, notification, com.atproto.repo/identity/server); median ms of process CPU time.

A lexicon ``unknown`` field (each post's record) is decoded on first access (``lex._base.lazy_json``):
"decode only" leaves the records as raw JSON, "decode + read" pays for the one it reads.

Targets (issue 21): typed decode ≥ 4× faster than the view and ≥ 8× faster than the SDK's
models; ``import pysky_async.lex`` < 30 ms; the common types < 100 ms together.
Run on an idle machine: on a loaded one every number grows, the ratios much less.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from pysky_async import lex
from pysky_async._response import JsonObject

feed = lex.app.bsky.feed


def timeline_body(n_posts: int = 50, seed: int = 7) -> bytes:
    """A deterministic getTimeline answer shaped like the AppView's."""
    rng = random.Random(seed)

    def author(i: int) -> dict[str, Any]:
        return {"did": f"did:plc:{i:024d}", "handle": f"user{i}.bsky.social", "displayName": f"User Number {i}",
                "avatar": f"https://cdn.bsky.app/img/avatar/plain/did:plc:{i:024d}/bafkrei{i:052d}@jpeg",
                "associated": {"chat": {"allowIncoming": "following"}},
                "viewer": {"muted": False, "blockedBy": False, "following": f"at://did:plc:me/app.bsky.graph.follow/{i}"},
                "labels": [], "createdAt": "2024-01-02T03:04:05.000Z"}

    def post(i: int) -> dict[str, Any]:
        uri = f"at://did:plc:{i:024d}/app.bsky.feed.post/3l{i:011d}"
        text = " ".join(rng.choice(["hello", "bluesky", "typed", "fast", "models", "#python", "link"])
                        for _ in range(rng.randint(3, 25)))
        record: dict[str, Any] = {"$type": "app.bsky.feed.post", "text": text, "langs": ["en"],
                                  "createdAt": "2026-11-30T12:00:00.000Z",
                                  "facets": [{"index": {"byteStart": 0, "byteEnd": 5}, "features": [
                                      {"$type": "app.bsky.richtext.facet#link", "uri": "https://example.com/"}]}]}
        view: dict[str, Any] = {"uri": uri, "cid": f"bafyrei{i:052d}", "author": author(i), "record": record,
                                "replyCount": rng.randint(0, 50), "repostCount": rng.randint(0, 50),
                                "likeCount": rng.randint(0, 500), "quoteCount": 0, "bookmarkCount": 0,
                                "indexedAt": "2026-11-30T12:00:01.000Z", "viewer": {"threadMuted": False,
                                                                                     "embeddingDisabled": False},
                                "labels": [{"src": "did:plc:labeler", "uri": uri, "val": "sexual", "neg": False,
                                            "cts": "2026-11-30T12:00:02.000Z"}] if i % 9 == 0 else []}
        kind = i % 4
        if kind == 0:
            view["embed"] = {"$type": "app.bsky.embed.images#view", "images": [
                {"thumb": f"https://cdn.bsky.app/img/feed_thumbnail/plain/x/{i}@jpeg",
                 "fullsize": f"https://cdn.bsky.app/img/feed_fullsize/plain/x/{i}@jpeg", "alt": "a photo",
                 "aspectRatio": {"width": 1200, "height": 800}} for _ in range(rng.randint(1, 3))]}
        elif kind == 1:
            view["embed"] = {"$type": "app.bsky.embed.external#view", "external": {
                "uri": "https://example.com/article", "title": "An article", "description": "About things",
                "thumb": "https://cdn.bsky.app/img/feed_thumbnail/plain/x/t@jpeg"}}
        elif kind == 2:
            view["embed"] = {"$type": "app.bsky.embed.record#view", "record": {
                "$type": "app.bsky.embed.record#viewRecord", "uri": uri, "cid": f"bafyrei{i:052d}",
                "author": author(i + 1000), "value": {"$type": "app.bsky.feed.post", "text": "quoted",
                                                      "createdAt": "2026-11-29T00:00:00.000Z"},
                "indexedAt": "2026-11-29T00:00:01.000Z", "likeCount": 3, "labels": []}}
        return view

    items: list[dict[str, Any]] = []
    for i in range(n_posts):
        item: dict[str, Any] = {"post": post(i)}
        if i % 10 == 1:
            parent = post(i + 500)
            item["reply"] = {"root": {"$type": "app.bsky.feed.defs#postView", **parent},
                             "parent": {"$type": "app.bsky.feed.defs#postView", **parent}}
        if i % 7 == 3:
            item["reason"] = {"$type": "app.bsky.feed.defs#reasonRepost", "by": author(i + 2000),
                              "indexedAt": "2026-11-30T12:00:03.000Z"}
        items.append(item)
    return json.dumps({"feed": items, "cursor": "1733000000000::bafyrei"}).encode()


def read_typed(timeline: Any) -> int:
    n = 0
    for item in timeline.feed:
        post = item.post
        n += len(post.uri) + len(post.author.handle) + len(post.record["text"]) + (post.like_count or 0)
        n += post.embed is not None
        n += (post.author.display_name or "") != ""
    return n


def read_view(timeline: Any) -> int:
    n = 0
    for item in timeline.feed:
        post = item.post
        n += len(post.uri) + len(post.author.handle) + len(post.record.text) + post.get("likeCount", 0)
        n += post.get("embed") is not None
        n += post.author.get("displayName", "") != ""
    return n


def read_sdk(timeline: Any) -> int:
    n = 0
    for item in timeline.feed:
        post = item.post
        n += len(post.uri) + len(post.author.handle) + len(post.record.text) + (post.like_count or 0)
        n += post.embed is not None
        n += (post.author.display_name or "") != ""
    return n


def variants(body: bytes) -> dict[str, Callable[[], Any]]:
    output = feed.GetTimelineOutput
    cases: dict[str, Callable[[], Any]] = {
        "typed (pysky_async.lex, msgspec)": lambda: lex.decode(body, output),
        "view (json.loads + JsonObject)": lambda: JsonObject(json.loads(body)),
        "typed, decode + read": lambda: read_typed(lex.decode(body, output)),
        "view, decode + read": lambda: read_view(JsonObject(json.loads(body))),
    }
    try:
        from atproto_client import models
        from atproto_client.models.utils import get_or_create
    except ImportError:
        print("atproto SDK not installed (pip install -e '.[bench]'): its rows are left out", file=sys.stderr)
        return cases
    response = models.AppBskyFeedGetTimeline.Response
    cases["atproto SDK models (pydantic)"] = lambda: get_or_create(json.loads(body), response, strict=False)
    cases["atproto SDK, decode + read"] = lambda: read_sdk(get_or_create(json.loads(body), response, strict=False))
    return cases


def bench_decode(rounds: int, per_round: int) -> tuple[dict[str, float], dict[str, list[float]]]:
    body = timeline_body()
    cases = variants(body)
    for run in cases.values():  # warm up (decoders built, imports done) and check they agree
        run()
    assert read_typed(lex.decode(body, feed.GetTimelineOutput)) == read_view(JsonObject(json.loads(body)))
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, run in cases.items():
            start = time.perf_counter()
            for _ in range(per_round):
                run()
            samples[name].append((time.perf_counter() - start) / per_round * 1e6)
    print(f"\nDecoding one 50-post getTimeline body ({len(body):,} bytes), µs, median of {rounds} rounds "
          f"(load average {os.getloadavg()[0]:.2f} at the end)")
    print("| variant | median µs | min |\n|---|---:|---:|")
    medians = {name: statistics.median(values) for name, values in samples.items()}
    for name, values in samples.items():
        print(f"| {name} | {medians[name]:,.0f} | {min(values):,.0f} |")
    return medians, samples


def round_ratio(samples: dict[str, list[float]], slower: str, faster: str) -> float:
    """The median over rounds of slower/faster measured in the same round: the alternation makes
    both see the same load, so this ratio drifts less than the ratio of the two medians."""
    return statistics.median(a / b for a, b in zip(samples[slower], samples[faster], strict=True))


IMPORT_TIMER = """
import time
{setup}
t = time.process_time()
import pysky_async.lex as lex
t1 = time.process_time()
lex.app.bsky.feed.PostView, lex.app.bsky.actor.ProfileViewDetailed, lex.app.bsky.graph.ListView
lex.app.bsky.notification.ListNotificationsOutput, lex.com.atproto.repo.StrongRef
lex.com.atproto.identity.ResolveHandleOutput, lex.com.atproto.server.GetSessionOutput
t2 = time.process_time()
print((t1 - t) * 1000, (t2 - t1) * 1000)
"""


IMPORT_SETUPS = {
    "after `import pysky_async`": "import pysky_async",
    "in a program with a client (after `from pysky_async import AsyncBskyClient`)":
        "from pysky_async import AsyncBskyClient",
}


def bench_import(rounds: int) -> tuple[float, float]:
    # bytecode written and used, as after an install (PYTHONDONTWRITEBYTECODE would time the compiler)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    package: dict[str, list[float]] = {name: [] for name in IMPORT_SETUPS}
    common: dict[str, list[float]] = {name: [] for name in IMPORT_SETUPS}
    for setup in IMPORT_SETUPS.values():  # warm-up: writes the bytecode
        subprocess.run([sys.executable, "-c", IMPORT_TIMER.format(setup=setup)], env=env, capture_output=True,
                       check=True)
    for _ in range(rounds):
        for name, setup in IMPORT_SETUPS.items():
            out = subprocess.run([sys.executable, "-c", IMPORT_TIMER.format(setup=setup)], capture_output=True,
                                 text=True, check=True, env=env)
            a, b = map(float, out.stdout.split())
            package[name].append(a)
            common[name].append(b)
    print(f"\nImport, ms of process CPU, median of {rounds} fresh interpreters (alternating)")
    print("| what | median ms | min |\n|---|---:|---:|")
    for name in IMPORT_SETUPS:
        print(f"| import pysky_async.lex, {name} | {statistics.median(package[name]):.1f} | "
              f"{min(package[name]):.1f} |")
        print(f"| the 20 common types (msgspec included), {name} | {statistics.median(common[name]):.1f} | "
              f"{min(common[name]):.1f} |")
    first = next(iter(IMPORT_SETUPS))
    return statistics.median(package[first]), statistics.median(common[first])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="3 rounds, for a smoke test")
    args = parser.parse_args()
    rounds = 3 if args.quick else args.rounds
    medians, samples = bench_decode(rounds, per_round=20)
    package_ms, common_ms = bench_import(rounds)
    typed, view = "typed (pysky_async.lex, msgspec)", "view (json.loads + JsonObject)"
    print("\nTargets (ratio of the medians; in brackets the median of the per-round ratios):")
    print(f"- typed vs view: {medians[view] / medians[typed]:.1f}× [{round_ratio(samples, view, typed):.1f}×] "
          f"decode only, {medians['view, decode + read'] / medians['typed, decode + read']:.1f}× "
          f"[{round_ratio(samples, 'view, decode + read', 'typed, decode + read'):.1f}×] decode + read "
          f"(target ≥ 4×)")
    sdk = "atproto SDK models (pydantic)"
    if sdk in medians:
        print(f"- typed vs the atproto SDK's models: {medians[sdk] / medians[typed]:.1f}× "
              f"[{round_ratio(samples, sdk, typed):.1f}×] (target ≥ 8×)")
    print(f"- import pysky_async.lex: {package_ms:.1f} ms (target < 30); common types: {common_ms:.1f} ms (< 100)")


if __name__ == "__main__":
    main()
