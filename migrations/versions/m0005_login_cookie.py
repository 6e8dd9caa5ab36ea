"""Logins of the web glue: the login cookie's nonce, issue time and expiry (bsky_oauth_login)

Revision ID: 0005_login_cookie
Revises: 0003_oauth
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005_login_cookie'
down_revision = '0004_refresh_lease'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('bsky_oauth_login',
    sa.Column('nonce_hash', sa.String(length=64), nullable=False),
    sa.Column('did', sa.String(length=255), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('nonce_hash')
    )
    with op.batch_alter_table('bsky_oauth_login', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bsky_oauth_login_did'), ['did'], unique=False)
        batch_op.create_index(batch_op.f('ix_bsky_oauth_login_expires_at'), ['expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('bsky_oauth_login', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bsky_oauth_login_expires_at'))
        batch_op.drop_index(batch_op.f('ix_bsky_oauth_login_did'))
    op.drop_table('bsky_oauth_login')
