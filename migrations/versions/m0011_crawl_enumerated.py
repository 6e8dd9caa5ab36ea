"""crawl jobs: the listing of a job's DIDs is done once (its cursor, who lists, when it finished)

Revision ID: 0011_crawl_enumerated
Revises: 0010_crawl_jobs
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011_crawl_enumerated'
down_revision = '0010_crawl_jobs'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('bsky_crawl_enumeration',
    sa.Column('job', sa.String(length=255), nullable=False),
    sa.Column('cursor', sa.String(length=1024), nullable=True),
    sa.Column('listed', sa.BigInteger(), nullable=False),
    sa.Column('claimant', sa.String(length=255), nullable=True),
    sa.Column('claim_expires', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('job')
    )


def downgrade() -> None:
    op.drop_table('bsky_crawl_enumeration')
