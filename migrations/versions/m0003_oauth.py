"""OAuth sessions and logins in progress (bsky.oauth)

Revision ID: 0003_oauth
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003_oauth'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('bsky_oauth_session',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('did', sa.String(length=255), nullable=False),
    sa.Column('handle', sa.String(length=255), nullable=True),
    sa.Column('pds_endpoint', sa.String(length=512), nullable=False),
    sa.Column('issuer', sa.String(length=512), nullable=False),
    sa.Column('client_id', sa.Text(), nullable=False),
    sa.Column('scope', sa.Text(), nullable=False),
    sa.Column('access_token', sa.Text(), nullable=False),
    sa.Column('refresh_token', sa.Text(), nullable=True),
    sa.Column('dpop_key', sa.Text(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('dpop_nonce', sa.String(length=255), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('did')
    )
    op.create_table('bsky_oauth_state',
    sa.Column('state', sa.String(length=128), nullable=False),
    sa.Column('issuer', sa.String(length=512), nullable=False),
    sa.Column('did', sa.String(length=255), nullable=True),
    sa.Column('handle', sa.String(length=255), nullable=True),
    sa.Column('pds_endpoint', sa.String(length=512), nullable=True),
    sa.Column('redirect_uri', sa.Text(), nullable=False),
    sa.Column('pkce_verifier', sa.Text(), nullable=False),
    sa.Column('dpop_key', sa.Text(), nullable=False),
    sa.Column('app_state', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('state')
    )
    with op.batch_alter_table('bsky_oauth_state', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bsky_oauth_state_created_at'), ['created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('bsky_oauth_state', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bsky_oauth_state_created_at'))
    op.drop_table('bsky_oauth_state')
    op.drop_table('bsky_oauth_session')
