"""The official-SDK oracle for the differential tests: installed on first use, like the PDS.

Missing node 22 (installed by tests/realnet/install-pds.sh) skips these tests, or fails them
under ``PYSKY_REQUIRE_REALNET=1`` (.ci/run), as tests/realnet/fixtures.py does for the servers.
"""

from __future__ import annotations

import pytest

from tests.realnet.fixtures import _unavailable

from .differential import Figures, run_all
from .oracle import install_oracle, node_binary, oracle_installed


@pytest.fixture(scope="session")
def conformance_figures() -> Figures:
    """Everything compared once: official inputs, the generated corpus, grapheme counts."""
    if not node_binary().is_file():
        _unavailable(f"node 22 not found at {node_binary()}: run tests/realnet/install-pds.sh, then "
                     "tests/conformance/install-oracle.sh")
    if not oracle_installed():
        install_oracle()
    return run_all()
