"""A recorded firehose for the group tests: ``#commit`` frames of many repos, each with one op and a
rising ``rev``, in the wire format (DAG-CBOR header + body; no blocks: the ops are deletes)."""

from __future__ import annotations

import libipld

HEADER = bytes(libipld.encode_dag_cbor({"op": 1, "t": "#commit"}))


def did_of(n: int) -> str:
    return f"did:plc:g{n:023d}"


def commit_frame(seq: int, did: str, rev: str) -> bytes:
    body = {"seq": seq, "repo": did, "rev": rev, "since": None, "time": "2026-12-01T00:00:00.000Z",
            "ops": [{"action": "delete", "path": f"com.example.groupnote/r{seq}", "cid": None}],
            "blocks": b"", "tooBig": False, "blobs": [], "rebase": False}
    return HEADER + bytes(libipld.encode_dag_cbor(body))


def recording(events: int, repos: int) -> list[bytes]:
    """``events`` commit frames (seqs 1..events) spread round-robin-ish over ``repos`` repos."""
    frames = []
    for seq in range(1, events + 1):
        n = (seq * 7919) % repos
        frames.append(commit_frame(seq, did_of(n), f"3l{seq:011d}"))
    return frames
