"""PostgreSQL storage settings for the stream tables: group log events inline and uncompressed, room
for in-place updates of the per-repo revs

A firehose frame is 1-7 KB of DAG-CBOR (2.6 KB on average on the reference PDS): above PostgreSQL's
default 2 KB threshold each one was compressed (pglz, to little effect on CBOR) and moved to the
TOAST table, then read back and decompressed by every worker. With ``toast_tuple_target`` at its
maximum an event row up to ~8 KB stays in the heap as it came; a larger one goes out of line
without compression (``STORAGE EXTERNAL``). PostgreSQL's CPU per event fell by ~20% in
``benchmarks/bench_group.py``.

``bsky_repo_rev`` gets a row per repo and consumer, updated with each commit of that repo's events:
with pages left 30% free (``fillfactor``) an update stays on its page and adds no index entry (a
"HOT" update). SQLite has no such settings: nothing to do there.

Revision ID: 0012_postgresql_storage
Revises: 0011_crawl_enumerated
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = '0012_postgresql_storage'
down_revision = '0011_crawl_enumerated'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE bsky_group_event SET (toast_tuple_target = 8160)")
    op.execute("ALTER TABLE bsky_group_event ALTER COLUMN data SET STORAGE EXTERNAL")
    op.execute("ALTER TABLE bsky_repo_rev SET (fillfactor = 70)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE bsky_group_event ALTER COLUMN data SET STORAGE EXTENDED")
    op.execute("ALTER TABLE bsky_group_event RESET (toast_tuple_target)")
    op.execute("ALTER TABLE bsky_repo_rev RESET (fillfactor)")
