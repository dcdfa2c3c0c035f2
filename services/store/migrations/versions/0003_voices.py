"""Enrolled voices: the voices table, per-voice scan claims, and kws_results keyed by (track, voice).

A voice's artefact (its ``KwsVoiceHead.v1`` head, which names the base model it was fitted on) is stored
in ``voices``; ``voice_tracks`` claims a (voice, track) scan before its job is published, and
``kws_results`` gains ``voice_id`` ('' for the base model) in its primary key, so one track has one cached
answer per voice and a new voice never serves another voice's intervals.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "voices",
        sa.Column("voice_id", sa.String(40), primary_key=True),
        sa.Column("api_key_id", sa.Integer, sa.ForeignKey("api_keys.id", ondelete="CASCADE"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("keyword_clips", sa.Integer, nullable=False),
        sa.Column("free_speech_s", sa.Float, nullable=False),
        sa.Column("head", JSONB),
        sa.Column("model_version", sa.String(200)),
        sa.Column("validation", JSONB),
        sa.Column("error_code", sa.String(64)),
        sa.Column("error_message", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_voices_api_key_id", "voices", ["api_key_id"])
    op.create_table(
        "voice_tracks",
        sa.Column(
            "voice_id",
            sa.String(40),
            sa.ForeignKey("voices.voice_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("track_id", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.add_column("kws_results", sa.Column("voice_id", sa.String(40), nullable=False, server_default=""))
    op.drop_constraint("kws_results_pkey", "kws_results", type_="primary")
    op.create_primary_key("kws_results_pkey", "kws_results", ["track_id", "voice_id"])


def downgrade() -> None:
    op.execute("DELETE FROM kws_results WHERE voice_id <> ''")
    op.drop_constraint("kws_results_pkey", "kws_results", type_="primary")
    op.create_primary_key("kws_results_pkey", "kws_results", ["track_id"])
    op.drop_column("kws_results", "voice_id")
    op.drop_table("voice_tracks")
    op.drop_index("ix_voices_api_key_id", "voices")
    op.drop_table("voices")
