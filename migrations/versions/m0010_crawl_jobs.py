"""crawl jobs shared by workers (one row per DID) and request budgets shared in the database

Revision ID: 0010_crawl_jobs
Revises: 0008_notifications
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010_crawl_jobs'
down_revision = "0009_consumer_groups"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('bsky_crawl_job',
    sa.Column('job', sa.String(length=255), nullable=False),
    sa.Column('did', sa.String(length=255), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('claimant', sa.String(length=255), nullable=True),
    sa.Column('claim_expires', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.String(length=512), nullable=True),
    sa.Column('done_by', sa.String(length=255), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('job', 'did')
    )
    with op.batch_alter_table('bsky_crawl_job', schema=None) as batch_op:
        batch_op.create_index('ix_bsky_crawl_job_state', ['job', 'state'], unique=False)
    op.create_table('bsky_request_budget',
    sa.Column('key', sa.String(length=512), nullable=False),
    sa.Column('tokens', sa.Float(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.Column('rate', sa.Float(), nullable=False),
    sa.Column('capacity', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )


def downgrade() -> None:
    op.drop_table('bsky_request_budget')
    with op.batch_alter_table('bsky_crawl_job', schema=None) as batch_op:
        batch_op.drop_index('ix_bsky_crawl_job_state')
    op.drop_table('bsky_crawl_job')
