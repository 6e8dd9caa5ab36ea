"""per-consumer repo revs: the newest rev whose effects a named consumer committed, and its backfill state

Revision ID: 0007_repo_revs
Revises: 0006_repo_sync
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007_repo_revs'
down_revision = '0006_repo_sync'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('bsky_repo_rev',
    sa.Column('consumer', sa.String(length=255), nullable=False),
    sa.Column('did', sa.String(length=255), nullable=False),
    sa.Column('rev', sa.String(length=32), nullable=True),
    sa.Column('backfill', sa.String(length=16), nullable=True),
    sa.Column('reason', sa.String(length=512), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('consumer', 'did')
    )


def downgrade() -> None:
    op.drop_table('bsky_repo_rev')
