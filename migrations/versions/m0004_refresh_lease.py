"""Refresh leases (one login or token refresh per account across processes, no lock over the
network); bsky_session.password_check (a salted hash: a changed password is noticed)

Revision ID: 0004_refresh_lease
Revises: 0003_oauth
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004_refresh_lease'
down_revision = '0003_oauth'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('bsky_refresh_lease',
    sa.Column('name', sa.String(length=512), nullable=False),
    sa.Column('holder', sa.String(length=64), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    with op.batch_alter_table('bsky_session', schema=None) as batch_op:
        batch_op.add_column(sa.Column('password_check', sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('bsky_session', schema=None) as batch_op:
        batch_op.drop_column('password_check')
    op.drop_table('bsky_refresh_lease')
