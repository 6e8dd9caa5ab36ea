"""consumer groups: the partitioned log per source, groups, members, and partition leases with watermarks

Revision ID: 0009_consumer_groups
Revises: 0008_notifications
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009_consumer_groups'
down_revision = '0008_notifications'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('bsky_group_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('source', sa.String(length=512), nullable=False),
    sa.Column('partitions', sa.Integer(), nullable=False),
    sa.Column('upstream_cursor', sa.BigInteger(), nullable=True),
    sa.Column('last_position', sa.BigInteger(), nullable=False),
    sa.Column('term', sa.BigInteger(), nullable=False),
    sa.Column('leader', sa.String(length=255), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source')
    )
    op.create_table('bsky_group_event',
    sa.Column('log_id', sa.BigInteger(), nullable=False),
    sa.Column('partition', sa.Integer(), nullable=False),
    sa.Column('position', sa.BigInteger(), nullable=False),
    sa.Column('cursor', sa.BigInteger(), nullable=True),
    sa.Column('text', sa.Boolean(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('log_id', 'partition', 'position')
    )
    op.create_table('bsky_group',
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('log_id', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    with op.batch_alter_table('bsky_group', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bsky_group_log_id'), ['log_id'], unique=False)
    op.create_table('bsky_group_member',
    sa.Column('group_name', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('group_name', 'name')
    )
    op.create_table('bsky_group_partition',
    sa.Column('group_name', sa.String(length=255), nullable=False),
    sa.Column('partition', sa.Integer(), nullable=False),
    sa.Column('owner', sa.String(length=255), nullable=True),
    sa.Column('epoch', sa.BigInteger(), nullable=False),
    sa.Column('lease_expires', sa.DateTime(timezone=True), nullable=True),
    sa.Column('position', sa.BigInteger(), nullable=False),
    sa.Column('cursor', sa.BigInteger(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('group_name', 'partition')
    )


def downgrade() -> None:
    op.drop_table('bsky_group_partition')
    op.drop_table('bsky_group_member')
    with op.batch_alter_table('bsky_group', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bsky_group_log_id'))
    op.drop_table('bsky_group')
    op.drop_table('bsky_group_event')
    op.drop_table('bsky_group_log')
