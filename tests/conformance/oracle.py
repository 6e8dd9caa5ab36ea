"""Runs the official @atproto/api in node (tests/conformance/oracle.mjs): one process per batch."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.realnet.pds import realnet_dir

HERE = Path(__file__).parent
INSTALL_SCRIPT = HERE / "install-oracle.sh"


def node_binary() -> Path:
    return realnet_dir() / "node22" / "node-v22" / "bin" / "node"


def oracle_dir() -> Path:
    return realnet_dir() / "oracle"


def oracle_installed() -> bool:
    return (oracle_dir() / ".installed").is_file() and (oracle_dir() / "node_modules" / "@atproto" / "api").is_dir()


def install_oracle() -> None:
    """Runs install-oracle.sh (npm install of the pinned @atproto/api); raises on failure."""
    done = subprocess.run(["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(f"install-oracle.sh failed ({done.returncode}):\n{done.stderr[-3000:]}")


def run_oracle(*, richtext: Sequence[str] = (), graphemes: Sequence[str] = ()) -> dict[str, Any]:
    """The official results for every text, from one node process."""
    payload = json.dumps({"richtext": list(richtext), "graphemes": list(graphemes)})
    done = subprocess.run([str(node_binary()), str(HERE / "oracle.mjs")], input=payload, capture_output=True,
                          text=True, encoding="utf-8", cwd=oracle_dir(), timeout=300,
                          env={**os.environ, "NODE_NO_WARNINGS": "1"})
    if done.returncode != 0:
        raise RuntimeError(f"oracle.mjs failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result
