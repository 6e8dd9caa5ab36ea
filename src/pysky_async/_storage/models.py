"""SQLAlchemy models of every table pysky_async keeps. Migrations live in ``migrations/``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC datetime on every database (SQLite stores it naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use datetime.now(timezone.utc)")
        value = value.astimezone(dt.timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


JsonType = JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments INTEGER PRIMARY KEY
BigIntId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Base(DeclarativeBase):
    pass


class SessionRow(Base):
    """One stored login per account (access/refresh JWTs; never the password, only a salted hash of it)."""

    __tablename__ = "bsky_session"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    account_key: Mapped[str] = mapped_column(String(512), unique=True)
    did: Mapped[str] = mapped_column(String(255), index=True)
    handle: Mapped[str] = mapped_column(String(255))
    pds_endpoint: Mapped[str] = mapped_column(String(512))
    access_jwt: Mapped[str] = mapped_column(Text)
    refresh_jwt: Mapped[str] = mapped_column(Text)
    password_check: Mapped[str | None] = mapped_column(String(255))
    """A salted scrypt hash of the password the session was made with (``_password_check``), or None."""
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class RefreshLeaseRow(Base):
    """Who is logging in or refreshing an account's session now, until when (``_refresh_lease``):
    a row instead of a database lock, so no transaction stays open over the network."""

    __tablename__ = "bsky_refresh_lease"

    name: Mapped[str] = mapped_column(String(512), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class CallLogRow(Base):
    """One row per XRPC call attempt, successful or not."""

    __tablename__ = "bsky_api_call_log"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    timestamp: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)
    hostname: Mapped[str | None] = mapped_column(String(255))
    endpoint: Mapped[str] = mapped_column(String(255), index=True)
    method: Mapped[str] = mapped_column(String(8))
    request_did: Mapped[str | None] = mapped_column(String(255), index=True)
    cursor_key: Mapped[str | None] = mapped_column(String(255))
    cursor_passed: Mapped[str | None] = mapped_column(Text)
    cursor_received: Mapped[str | None] = mapped_column(Text)
    http_status_code: Mapped[int | None] = mapped_column(Integer)
    params: Mapped[Any] = mapped_column(JsonType, nullable=True)
    exception_class: Mapped[str | None] = mapped_column(String(255))
    exception_text: Mapped[str | None] = mapped_column(Text)
    exception_response: Mapped[Any] = mapped_column(JsonType, nullable=True)
    response_keys: Mapped[str | None] = mapped_column(Text)
    write_op_points_consumed: Mapped[int] = mapped_column(Integer, default=0)
    session_was_refreshed: Mapped[bool] = mapped_column(Boolean, default=False)
    duration_microseconds: Mapped[int | None] = mapped_column(BigInteger)


class CursorRow(Base):
    """The last cursor seen per (account, endpoint, cursor_key), for resumed pagination."""

    __tablename__ = "bsky_cursor"
    __table_args__ = (UniqueConstraint("did", "endpoint", "cursor_key", name="uq_bsky_cursor_scope"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    did: Mapped[str] = mapped_column(String(255))
    endpoint: Mapped[str] = mapped_column(String(255))
    cursor_key: Mapped[str] = mapped_column(String(255), default="")
    cursor: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class WriteOpRow(Base):
    """The write-op ledger: points reserved or spent per account, for the write budget."""

    __tablename__ = "bsky_write_op"
    __table_args__ = (Index("ix_bsky_write_op_did_created_at", "did", "created_at"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    did: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    endpoint: Mapped[str] = mapped_column(String(255))
    points: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="reserved")


class UserProfileRow(Base):
    """Cached actor profiles (handles may move between DIDs, so handle is not unique)."""

    __tablename__ = "bsky_user_profile"

    did: Mapped[str] = mapped_column(String(255), primary_key=True)
    handle: Mapped[str | None] = mapped_column(String(255), index=True)
    display_name: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    avatar: Mapped[str | None] = mapped_column(Text)
    banner: Mapped[str | None] = mapped_column(Text)
    followers_count: Mapped[int | None] = mapped_column(Integer)
    follows_count: Mapped[int | None] = mapped_column(Integer)
    posts_count: Mapped[int | None] = mapped_column(Integer)
    profile_created_at: Mapped[str | None] = mapped_column(String(64))
    indexed_at: Mapped[str | None] = mapped_column(String(64))
    raw: Mapped[Any] = mapped_column(JsonType, nullable=True)
    error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class PostRow(Base):
    """Posts made through this library, with the caller's client_unique_key."""

    __tablename__ = "bsky_post"
    __table_args__ = (UniqueConstraint("did", "client_unique_key", name="uq_bsky_post_client_key"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    did: Mapped[str] = mapped_column(String(255))
    uri: Mapped[str] = mapped_column(String(512), unique=True)
    cid: Mapped[str] = mapped_column(String(255))
    client_unique_key: Mapped[str | None] = mapped_column(String(255))
    text: Mapped[str | None] = mapped_column(Text)
    reply_root_uri: Mapped[str | None] = mapped_column(String(512))
    reply_parent_uri: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class OAuthSessionRow(Base):
    """One OAuth session per user DID (``bsky.oauth``): tokens and the session's DPoP key,
    encrypted when the app gives a key. Refreshed only by the holder of its lease."""

    __tablename__ = "bsky_oauth_session"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    did: Mapped[str] = mapped_column(String(255), unique=True)
    handle: Mapped[str | None] = mapped_column(String(255))
    pds_endpoint: Mapped[str] = mapped_column(String(512))
    issuer: Mapped[str] = mapped_column(String(512))
    client_id: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text)
    access_token: Mapped[str] = mapped_column(Text)
    refresh_token: Mapped[str | None] = mapped_column(Text)
    dpop_key: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    dpop_nonce: Mapped[str | None] = mapped_column(String(255))
    """The authorization server's latest DPoP nonce, so a worker's first refresh needs no retry."""
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class OAuthLoginRow(Base):
    """One login of the web glue (a login cookie issued): the cookie is honoured only while its
    row exists and has not expired; a logout deletes the user's rows. The nonce is kept hashed."""

    __tablename__ = "bsky_oauth_login"

    nonce_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    did: Mapped[str] = mapped_column(String(255), index=True)
    issued_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)


class OAuthStateRow(Base):
    """A login in progress (between PAR and the callback); used once, then deleted."""

    __tablename__ = "bsky_oauth_state"

    state: Mapped[str] = mapped_column(String(128), primary_key=True)
    issuer: Mapped[str] = mapped_column(String(512))
    did: Mapped[str | None] = mapped_column(String(255))
    handle: Mapped[str | None] = mapped_column(String(255))
    pds_endpoint: Mapped[str | None] = mapped_column(String(512))
    redirect_uri: Mapped[str] = mapped_column(Text)
    pkce_verifier: Mapped[str] = mapped_column(Text)
    dpop_key: Mapped[str] = mapped_column(Text)
    app_state: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
class StreamCursorRow(Base):
    """The durable cursor of a named stream consumer, per source (64-bit: relay seqs pass 2**31)."""

    __tablename__ = "bsky_stream_cursor"
    __table_args__ = (UniqueConstraint("consumer", "source", name="uq_bsky_stream_cursor_scope"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    consumer: Mapped[str] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(512))
    cursor: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class RepoSyncStateRow(Base):
    """What a verifying consumer knows of one repo's chain: its last verified ``rev`` and MST root,
    and whether it is ``active`` or ``desynchronized`` (a broken chain: queued for a resync)."""

    __tablename__ = "bsky_repo_sync_state"

    did: Mapped[str] = mapped_column(String(255), primary_key=True)
    rev: Mapped[str | None] = mapped_column(String(32), nullable=True)
    data_cid: Mapped[str | None] = mapped_column(String(128), nullable=True)
    status: Mapped[str] = mapped_column(String(32), index=True)
    reason: Mapped[str | None] = mapped_column(String(512), nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class NotificationHandledRow(Base):
    """A notification a named consumer (``bsky.notifications``) has handled, per account: kept
    for the look-back window behind its watermark, so nothing is handled twice."""

    __tablename__ = "bsky_notification_handled"
    __table_args__ = (UniqueConstraint("did", "consumer", "uri", name="uq_bsky_notification_handled_scope"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    did: Mapped[str] = mapped_column(String(255))
    consumer: Mapped[str] = mapped_column(String(255))
    uri: Mapped[str] = mapped_column(String(2048))
    reason: Mapped[str] = mapped_column(String(64))
    indexed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)
    handled_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class NotificationMarkRow(Base):
    """A named notification consumer's watermark: every notification listed at or before it was handled."""

    __tablename__ = "bsky_notification_mark"

    did: Mapped[str] = mapped_column(String(255), primary_key=True)
    consumer: Mapped[str] = mapped_column(String(255), primary_key=True)
    watermark: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class RepoRevRow(Base):
    """What a named consumer applied of one repo: the newest ``rev`` whose effects it committed, and
    its backfill state (None: never backfilled, ``done``: backfilled at ``rev``, ``failed``: ``reason``)."""

    __tablename__ = "bsky_repo_rev"

    consumer: Mapped[str] = mapped_column(String(255), primary_key=True)
    did: Mapped[str] = mapped_column(String(255), primary_key=True)
    rev: Mapped[str | None] = mapped_column(String(32), nullable=True)
    backfill: Mapped[str | None] = mapped_column(String(16), nullable=True)
    reason: Mapped[str | None] = mapped_column(String(512), nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class GroupLogRow(Base):
    """A consumer-group log: one per source (``source.key``), with ``partitions`` partitions, the
    upstream cursor of its newest event, the position of its newest event and its leader's term
    (incremented by each new leader: the fence of its appends)."""

    __tablename__ = "bsky_group_log"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(512), unique=True)
    partitions: Mapped[int] = mapped_column(Integer)
    upstream_cursor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_position: Mapped[int] = mapped_column(BigInteger, default=0)
    term: Mapped[int] = mapped_column(BigInteger, default=0)
    leader: Mapped[str | None] = mapped_column(String(255), nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class GroupEventRow(Base):
    """One event of a group log: its position (in log order), partition, upstream cursor, DID and the
    raw message as the source sent it (``text``: a text frame, decoded again by the source's decoder).
    On PostgreSQL ``data`` is kept inline and uncompressed up to ~8 KB (migration 0012)."""

    __tablename__ = "bsky_group_event"

    log_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    partition: Mapped[int] = mapped_column(Integer, primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    cursor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    text: Mapped[bool] = mapped_column(Boolean, default=False)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class GroupRow(Base):
    """A consumer group (its ``name``) and the log it reads."""

    __tablename__ = "bsky_group"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    log_id: Mapped[int] = mapped_column(BigInteger, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class GroupMemberRow(Base):
    """A live worker of a group: its last heartbeat (by the database's clock)."""

    __tablename__ = "bsky_group_member"

    group_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    heartbeat_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    started_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class GroupPartitionRow(Base):
    """One partition of a group: its lease (owner, expiry, epoch: the fencing token, incremented by
    each claim) and its watermark (every event of the partition at or below ``position`` was
    handled; ``cursor``: the upstream cursor at that position)."""

    __tablename__ = "bsky_group_partition"

    group_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    partition: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(255), nullable=True)
    epoch: Mapped[int] = mapped_column(BigInteger, default=0)
    lease_expires: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    position: Mapped[int] = mapped_column(BigInteger, default=0)
    cursor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class CrawlJobRow(Base):
    """One DID of a named crawl job (a backfill, a graph export) shared by workers on any machines:
    ``pending``, ``claimed`` by ``claimant`` until ``claim_expires`` (then anyone may take it over),
    ``done`` (by the worker named ``done_by``) or ``failed`` (``last_error``)."""

    __tablename__ = "bsky_crawl_job"
    __table_args__ = (Index("ix_bsky_crawl_job_state", "job", "state"),)

    job: Mapped[str] = mapped_column(String(255), primary_key=True)
    did: Mapped[str] = mapped_column(String(255), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    claimant: Mapped[str | None] = mapped_column(String(255), nullable=True)
    claim_expires: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(512), nullable=True)
    done_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class CrawlEnumerationRow(Base):
    """How far the listing of a crawl job's DIDs went (``listRepos``): the cursor after the last page
    added to the job, the worker listing now (``claimant`` until ``claim_expires``: then another worker
    resumes at ``cursor``), and ``finished_at``, set in the transaction of the last page: a job listed
    once is not listed again by its other workers nor by a restart."""

    __tablename__ = "bsky_crawl_enumeration"

    job: Mapped[str] = mapped_column(String(255), primary_key=True)
    cursor: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    listed: Mapped[int] = mapped_column(BigInteger, default=0)
    claimant: Mapped[str | None] = mapped_column(String(255), nullable=True)
    claim_expires: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class RequestBudgetRow(Base):
    """A token bucket shared by every process on this database: ``tokens`` at ``updated_at``
    (epoch seconds), refilled at ``rate`` a second up to ``capacity``; negative: requests owed."""

    __tablename__ = "bsky_request_budget"

    key: Mapped[str] = mapped_column(String(512), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    rate: Mapped[float] = mapped_column(Float)
    capacity: Mapped[float] = mapped_column(Float)
