"""Fixtures for the stream tests: one written workload on the session's real PDS."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass

import pytest

from ..realnet.pds import Account, PdsServer
from .workload import Reading, read_firehose, write_all


@dataclass
class Written:
    accounts: list[Account]
    dids: set[str]
    reading: Reading

    @property
    def seqs(self) -> set[int]:
        return self.reading.of(self.dids)


def new_accounts(pds: PdsServer, n: int) -> list[Account]:
    return [pds.create_account(f"s{secrets.token_hex(5)}.test", secrets.token_urlsafe(12)) for _ in range(n)]


@pytest.fixture(scope="package")
def written(pds: PdsServer) -> Written:
    """Four accounts with ~60 single writes, 400 batched creates, updates and deletes each."""
    accounts = new_accounts(pds, 4)
    asyncio.run(write_all(pds, accounts))
    reading = asyncio.run(read_firehose(pds))
    return Written(accounts, {a.did for a in accounts}, reading)
