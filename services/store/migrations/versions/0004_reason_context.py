"""Reason context: the baby's age per chat, the parent's context taps per answer, and feedback snapshots.

``chat_settings.age_band`` is the band chosen in ``/settings`` (NULL: not given). ``context_answers``
holds one answer per (request, question), the last tap wins. A feedback row keeps, as they were when the
parent rated the answer, the age band, the context answers and the reason the answer showed (the combined
top reason), so that ``feedback-report`` and later models see what the parent saw.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("chat_settings", sa.Column("age_band", sa.String(16)))
    op.create_table(
        "context_answers",
        sa.Column(
            "request_id",
            sa.String(200),
            sa.ForeignKey("requests.request_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("question", sa.String(32), primary_key=True),
        sa.Column("answer", sa.String(32), nullable=False),
        sa.Column("chat_id", sa.BigInteger, nullable=False, index=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.add_column("feedback", sa.Column("shown_label", sa.String(64)))
    op.add_column("feedback", sa.Column("age_band", sa.String(16)))
    op.add_column("feedback", sa.Column("context", JSONB, nullable=False, server_default="{}"))


def downgrade() -> None:
    for column in ("context", "age_band", "shown_label"):
        op.drop_column("feedback", column)
    op.drop_table("context_answers")
    op.drop_column("chat_settings", "age_band")
