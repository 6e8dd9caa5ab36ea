"""per-repo sync state: the last verified rev and MST root, desynchronized repos queued for a resync

Revision ID: 0006_repo_sync
Revises: 0003_oauth
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006_repo_sync'
down_revision = '0005_login_cookie'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('bsky_repo_sync_state',
    sa.Column('did', sa.String(length=255), nullable=False),
    sa.Column('rev', sa.String(length=32), nullable=True),
    sa.Column('data_cid', sa.String(length=128), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.String(length=512), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('did')
    )
    with op.batch_alter_table('bsky_repo_sync_state', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bsky_repo_sync_state_status'), ['status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('bsky_repo_sync_state', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bsky_repo_sync_state_status'))
    op.drop_table('bsky_repo_sync_state')
