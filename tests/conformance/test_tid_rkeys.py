"""Generated TIDs are record keys the reference PDS accepts.

The PDS refuses record keys its slur filter matches ("Unacceptable slur in record key"), about one
TID in a million: a bulk create of a few hundred records hit it in CI. ``Tid.next()`` skips those
values with a pattern restricted to the TID alphabet; the PDS's own ``hasExplicitSlur`` (run in
node from the installed @atproto/pds) is the oracle for that pattern.
"""

from __future__ import annotations

import json
import random
import subprocess

import pytest

from pysky_async._syntax import _B32, _REFUSED_BY_PDS, Tid
from tests.realnet.fixtures import _unavailable
from tests.realnet.pds import install_pds

from .oracle import node_binary

REFUSED_EXAMPLES = ["3n3nnoqqerp3t", "3n3n4gger4ils"]  # found by the PDS's filter over random TIDs

_ORACLE = """
import { hasExplicitSlur } from '%s';
let input = '';
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  process.stdout.write(JSON.stringify(JSON.parse(input).map((key) => hasExplicitSlur(key))));
});
"""


def _pds_refuses(keys: list[str]) -> list[bool]:
    if not node_binary().is_file():
        _unavailable(f"node 22 not found at {node_binary()}: run tests/realnet/install-pds.sh")
    module = install_pds() / "pds" / "node_modules" / "@atproto" / "pds" / "dist" / "handle" / "explicit-slurs.js"
    assert module.is_file(), f"the installed PDS has no {module}"
    done = subprocess.run([str(node_binary()), "--input-type=module", "-e", _ORACLE % module.as_posix()],
                          input=json.dumps(keys), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    answers: list[bool] = json.loads(done.stdout)
    return answers


def _corpus(seed: int = 14) -> list[str]:
    """Random TIDs, plus TIDs with a near-miss of the pattern planted at a random place."""
    rng = random.Random(seed)
    now = Tid.next().timestamp_us
    keys: list[str] = [Tid.from_parts(now + rng.randrange(10**12), rng.randrange(1024)) for _ in range(50_000)]
    near = ["n", "ailo4" + "bn3e", "gq" + "ks", "gq" + "ks", "l3e" + "rt5", "3er" + "ltm", "t" + "r2"]
    for _ in range(50_000):
        planted = "".join(rng.choice(choices) for choices in near)[: rng.randrange(4, 8)]
        tid = list(keys[rng.randrange(len(keys))])
        at = rng.randrange(1, 14 - len(planted))
        tid[at:at + len(planted)] = planted
        keys.append("".join(tid))
    # every combination around the pattern's edges, each planted once
    for planted in ("n" + a + b + c + end for a in "ailo4bne3" for b in "gqks" for c in "gqks"
                    for end in ("let", "l3t", "lat", "lez", "er", "3r", "es", "ar", "e", "")):
        tid = list(keys[rng.randrange(len(keys))])
        at = rng.randrange(1, 14 - len(planted))
        tid[at:at + len(planted)] = planted
        keys.append("".join(tid))
    keys.extend(REFUSED_EXAMPLES)
    return keys


def test_the_pattern_refuses_exactly_what_the_pds_refuses() -> None:
    keys = _corpus()
    assert all(set(key) <= set(_B32) and len(key) == 13 for key in keys)
    official = _pds_refuses(keys)
    ours = [_REFUSED_BY_PDS.search(key) is not None for key in keys]
    differ = [key for key, a, b in zip(keys, official, ours, strict=True) if a != b]
    assert differ == [], f"{len(differ)} keys judged differently, e.g. {differ[:10]}"
    assert sum(official) >= 300, "the corpus must exercise the filter"


def test_next_skips_a_value_the_pds_would_refuse(monkeypatch: pytest.MonkeyPatch) -> None:
    refused = Tid(REFUSED_EXAMPLES[0])
    assert _REFUSED_BY_PDS.search(refused)
    monkeypatch.setattr(Tid, "_last", 0)
    monkeypatch.setattr("time.time_ns", lambda: refused.timestamp_us * 1000)
    made = Tid.next(clock_id=refused.clock_id)
    assert made != refused and made > refused
    assert not _REFUSED_BY_PDS.search(made) and 0 < made.timestamp_us - refused.timestamp_us < 1000
