"""Initial schema: api_keys, requests (with reply bookkeeping), predictions, tracks, kws_results, errors.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _timestamp(name: str, *, nullable: bool = False, default_now: bool = False) -> sa.Column:
    return sa.Column(
        name,
        sa.DateTime(timezone=True),
        nullable=nullable,
        server_default=sa.func.now() if default_now else None,
    )


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        _timestamp("created_at", default_now=True),
        _timestamp("revoked_at", nullable=True),
    )
    op.create_table(
        "requests",
        sa.Column("request_id", sa.String(200), primary_key=True),
        sa.Column("chat_id", sa.BigInteger, nullable=False),
        sa.Column("message_id", sa.BigInteger, nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        _timestamp("created_at", default_now=True),
        _timestamp("reply_published_at", nullable=True),
        _timestamp("reply_sent_at", nullable=True),
        sa.UniqueConstraint("chat_id", "message_id", name="uq_requests_chat_message"),
    )
    op.create_table(
        "predictions",
        sa.Column(
            "request_id",
            sa.String(200),
            sa.ForeignKey("requests.request_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("label", sa.String(64)),
        sa.Column("probabilities", JSONB, nullable=False),
        sa.Column("quality", JSONB, nullable=False),
        sa.Column("model_version", sa.String(100), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        _timestamp("received_at"),
        _timestamp("processed_at"),
        _timestamp("stored_at", default_now=True),
    )
    op.create_table(
        "tracks",
        sa.Column("track_id", sa.String(64), primary_key=True),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("api_key_id", sa.Integer, sa.ForeignKey("api_keys.id", ondelete="SET NULL")),
        _timestamp("created_at", default_now=True),
    )
    op.create_table(
        "kws_results",
        sa.Column("track_id", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("duration_ms", sa.BigInteger),
        sa.Column("intervals", JSONB, nullable=False),
        sa.Column("model_version", sa.String(100)),
        sa.Column("threshold", sa.Float),
        sa.Column("error_code", sa.String(64)),
        sa.Column("error_message", sa.Text),
        _timestamp("received_at"),
        _timestamp("processed_at"),
        _timestamp("stored_at", default_now=True),
    )
    op.create_table(
        "errors",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("job_kind", sa.String(32), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("error_code", sa.String(64), nullable=False),
        sa.Column("error_message", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        _timestamp("failed_at"),
        _timestamp("stored_at", default_now=True),
        sa.UniqueConstraint("job_kind", "key", name="uq_errors_job"),
    )


def downgrade() -> None:
    for table in ("errors", "kws_results", "tracks", "predictions", "requests", "api_keys"):
        op.drop_table(table)
