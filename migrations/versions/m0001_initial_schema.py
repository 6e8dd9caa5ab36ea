"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('bsky_api_call_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('timestamp', sa.DateTime(timezone=True), nullable=False),
    sa.Column('hostname', sa.String(length=255), nullable=True),
    sa.Column('endpoint', sa.String(length=255), nullable=False),
    sa.Column('method', sa.String(length=8), nullable=False),
    sa.Column('request_did', sa.String(length=255), nullable=True),
    sa.Column('cursor_key', sa.String(length=255), nullable=True),
    sa.Column('cursor_passed', sa.Text(), nullable=True),
    sa.Column('cursor_received', sa.Text(), nullable=True),
    sa.Column('http_status_code', sa.Integer(), nullable=True),
    sa.Column('params', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('exception_class', sa.String(length=255), nullable=True),
    sa.Column('exception_text', sa.Text(), nullable=True),
    sa.Column('exception_response', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('response_keys', sa.Text(), nullable=True),
    sa.Column('write_op_points_consumed', sa.Integer(), nullable=False),
    sa.Column('session_was_refreshed', sa.Boolean(), nullable=False),
    sa.Column('duration_microseconds', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('bsky_api_call_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bsky_api_call_log_endpoint'), ['endpoint'], unique=False)
        batch_op.create_index(batch_op.f('ix_bsky_api_call_log_request_did'), ['request_did'], unique=False)
        batch_op.create_index(batch_op.f('ix_bsky_api_call_log_timestamp'), ['timestamp'], unique=False)

    op.create_table('bsky_cursor',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('did', sa.String(length=255), nullable=False),
    sa.Column('endpoint', sa.String(length=255), nullable=False),
    sa.Column('cursor_key', sa.String(length=255), nullable=False),
    sa.Column('cursor', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('did', 'endpoint', 'cursor_key', name='uq_bsky_cursor_scope')
    )
    op.create_table('bsky_post',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('did', sa.String(length=255), nullable=False),
    sa.Column('uri', sa.String(length=512), nullable=False),
    sa.Column('cid', sa.String(length=255), nullable=False),
    sa.Column('client_unique_key', sa.String(length=255), nullable=True),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('reply_root_uri', sa.String(length=512), nullable=True),
    sa.Column('reply_parent_uri', sa.String(length=512), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('did', 'client_unique_key', name='uq_bsky_post_client_key'),
    sa.UniqueConstraint('uri')
    )
    op.create_table('bsky_session',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('account_key', sa.String(length=512), nullable=False),
    sa.Column('did', sa.String(length=255), nullable=False),
    sa.Column('handle', sa.String(length=255), nullable=False),
    sa.Column('pds_endpoint', sa.String(length=512), nullable=False),
    sa.Column('access_jwt', sa.Text(), nullable=False),
    sa.Column('refresh_jwt', sa.Text(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('account_key')
    )
    with op.batch_alter_table('bsky_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bsky_session_did'), ['did'], unique=False)

    op.create_table('bsky_user_profile',
    sa.Column('did', sa.String(length=255), nullable=False),
    sa.Column('handle', sa.String(length=255), nullable=True),
    sa.Column('display_name', sa.Text(), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('avatar', sa.Text(), nullable=True),
    sa.Column('banner', sa.Text(), nullable=True),
    sa.Column('followers_count', sa.Integer(), nullable=True),
    sa.Column('follows_count', sa.Integer(), nullable=True),
    sa.Column('posts_count', sa.Integer(), nullable=True),
    sa.Column('profile_created_at', sa.String(length=64), nullable=True),
    sa.Column('indexed_at', sa.String(length=64), nullable=True),
    sa.Column('raw', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('did')
    )
    with op.batch_alter_table('bsky_user_profile', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bsky_user_profile_handle'), ['handle'], unique=False)

    op.create_table('bsky_write_op',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('did', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('endpoint', sa.String(length=255), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('bsky_write_op', schema=None) as batch_op:
        batch_op.create_index('ix_bsky_write_op_did_created_at', ['did', 'created_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('bsky_write_op', schema=None) as batch_op:
        batch_op.drop_index('ix_bsky_write_op_did_created_at')

    op.drop_table('bsky_write_op')
    with op.batch_alter_table('bsky_user_profile', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bsky_user_profile_handle'))

    op.drop_table('bsky_user_profile')
    with op.batch_alter_table('bsky_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bsky_session_did'))

    op.drop_table('bsky_session')
    op.drop_table('bsky_post')
    op.drop_table('bsky_cursor')
    with op.batch_alter_table('bsky_api_call_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bsky_api_call_log_timestamp'))
        batch_op.drop_index(batch_op.f('ix_bsky_api_call_log_request_did'))
        batch_op.drop_index(batch_op.f('ix_bsky_api_call_log_endpoint'))

    op.drop_table('bsky_api_call_log')
