"""Scans keyed by (track, voice, model version); enrollments remember their clip blobs.

``kws_scans`` claims one scan per (track, voice, model version) before its job is published, replacing
``voice_tracks`` (claims per (voice, track) only) for that purpose; ``tracks`` stays the record of the audio
itself. ``kws_results`` gains ``model_version`` in its primary key ('' for rows that had none), so a track
scanned by an older model, or with an older voice, is scanned again instead of being answered from the
store. Every stored result gets a claim for its version, so what was served before is served after.
Scans claimed but not answered at upgrade time have no version to claim: a client posting such a track
again gets it scanned again.

``voices.clip_blobs`` lists the blobs of an enrollment's clips, so the store deletes them when the job is
given up (a ``JobFailed`` names no blobs).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kws_scans",
        sa.Column("track_id", sa.String(64), primary_key=True),
        sa.Column("voice_id", sa.String(40), primary_key=True, server_default=""),
        sa.Column("model_version", sa.String(200), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.execute("UPDATE kws_results SET model_version = '' WHERE model_version IS NULL")
    op.alter_column("kws_results", "model_version", type_=sa.String(200), nullable=False, server_default="")
    op.drop_constraint("kws_results_pkey", "kws_results", type_="primary")
    op.create_primary_key("kws_results_pkey", "kws_results", ["track_id", "voice_id", "model_version"])
    op.execute(
        "INSERT INTO kws_scans (track_id, voice_id, model_version, created_at) "
        "SELECT track_id, voice_id, model_version, stored_at FROM kws_results"
    )
    op.drop_table("voice_tracks")
    op.add_column("voices", sa.Column("clip_blobs", JSONB, nullable=False, server_default="[]"))


def downgrade() -> None:
    op.drop_column("voices", "clip_blobs")
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
    op.execute(
        "INSERT INTO voice_tracks (voice_id, track_id) SELECT DISTINCT s.voice_id, s.track_id "
        "FROM kws_scans s JOIN voices v ON v.voice_id = s.voice_id"
    )
    # One answer per (track, voice) again: keep the newest.
    op.execute(
        "DELETE FROM kws_results r USING kws_results newer WHERE r.track_id = newer.track_id "
        "AND r.voice_id = newer.voice_id AND r.stored_at < newer.stored_at"
    )
    op.drop_constraint("kws_results_pkey", "kws_results", type_="primary")
    op.create_primary_key("kws_results_pkey", "kws_results", ["track_id", "voice_id"])
    op.alter_column("kws_results", "model_version", type_=sa.String(100), nullable=True, server_default=None)
    op.drop_table("kws_scans")
