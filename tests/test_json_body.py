"""``json_body``: CIDs and bytes in a request body become their atproto JSON forms; a body with
neither is passed on as the same object (no copy per write)."""

from __future__ import annotations

import json
from typing import Any

from pysky_async import CID
from pysky_async._json_body import json_body

LINK = "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"


def test_a_plain_body_is_the_same_object() -> None:
    body = {"repo": "did:plc:x", "record": {"text": "hi", "langs": ["en"], "n": 1, "ok": True, "none": None}}
    assert json_body(body) is body


def test_cids_and_bytes_take_their_json_forms_in_a_copy() -> None:
    cid = CID.decode(LINK)
    body: dict[str, Any] = {"record": {"embed": {"images": [{"image": {"ref": cid}}]}, "raw": b"\x00\xff"},
                            "keep": ("a", "b")}
    out = json_body(body)
    assert out["record"]["embed"]["images"][0]["image"]["ref"] == {"$link": LINK}
    assert out["record"]["raw"] == {"$bytes": "AP8"}
    assert out["keep"] is body["keep"]
    assert body["record"]["embed"]["images"][0]["image"]["ref"] is cid  # the caller's body is unchanged
    json.dumps(out)
