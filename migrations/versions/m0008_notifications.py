"""notifications handled by named consumers, and each consumer's watermark

Revision ID: 0008_notifications
Revises: 0007_repo_revs
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008_notifications'
down_revision = '0007_repo_revs'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('bsky_notification_handled',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('did', sa.String(length=255), nullable=False),
    sa.Column('consumer', sa.String(length=255), nullable=False),
    sa.Column('uri', sa.String(length=2048), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=False),
    sa.Column('indexed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('handled_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('did', 'consumer', 'uri', name='uq_bsky_notification_handled_scope')
    )
    with op.batch_alter_table('bsky_notification_handled', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bsky_notification_handled_indexed_at'), ['indexed_at'], unique=False)
    op.create_table('bsky_notification_mark',
    sa.Column('did', sa.String(length=255), nullable=False),
    sa.Column('consumer', sa.String(length=255), nullable=False),
    sa.Column('watermark', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('did', 'consumer')
    )


def downgrade() -> None:
    op.drop_table('bsky_notification_mark')
    with op.batch_alter_table('bsky_notification_handled', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bsky_notification_handled_indexed_at'))
    op.drop_table('bsky_notification_handled')
