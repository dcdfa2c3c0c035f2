"""The bot's tables: feedback, chat_settings, donations, chat_notices; requests learn their "Слушаю…" message.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _timestamp(name: str, *, default_now: bool = False, index: bool = False) -> sa.Column:
    return sa.Column(
        name,
        sa.DateTime(timezone=True),
        nullable=False,
        server_default=sa.func.now() if default_now else None,
        index=index,
    )


def _request_key() -> sa.Column:
    return sa.Column(
        "request_id",
        sa.String(200),
        sa.ForeignKey("requests.request_id", ondelete="CASCADE"),
        primary_key=True,
    )


def upgrade() -> None:
    op.add_column("requests", sa.Column("ack_message_id", sa.BigInteger))
    op.add_column("requests", sa.Column("file_unique_id", sa.String(128)))
    op.create_index("ix_requests_chat_created", "requests", ["chat_id", "created_at"])
    op.create_table(
        "feedback",
        _request_key(),
        sa.Column("chat_id", sa.BigInteger, nullable=False, index=True),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("reported_label", sa.String(64)),
        _timestamp("created_at", default_now=True),
        _timestamp("updated_at", default_now=True),
    )
    op.create_table(
        "chat_settings",
        sa.Column("chat_id", sa.BigInteger, primary_key=True),
        sa.Column("donate_audio", sa.Boolean, nullable=False, server_default=sa.false()),
        _timestamp("updated_at", default_now=True),
    )
    op.create_table(
        "donations",
        _request_key(),
        sa.Column("chat_id", sa.BigInteger, nullable=False, index=True),
        sa.Column("audio", sa.LargeBinary, nullable=False),
        _timestamp("created_at", index=True),
    )
    op.create_table(
        "chat_notices",
        sa.Column("chat_id", sa.BigInteger, primary_key=True),
        sa.Column("kind", sa.String(32), primary_key=True),
        _timestamp("sent_at"),
    )


def downgrade() -> None:
    for table in ("chat_notices", "donations", "chat_settings", "feedback"):
        op.drop_table(table)
    op.drop_index("ix_requests_chat_created", "requests")
    op.drop_column("requests", "file_unique_id")
    op.drop_column("requests", "ack_message_id")
