"""Migration 0005 on a database holding answers from before it: what was served is served after, and back.

A database of its own, migrated to 0004 with the real Alembic scripts, gets rows as the store wrote them
then (a base answer, a voice's answer, a rejected track without a version, a voice scan claim); 0005 must
key them by model version without losing one, and its downgrade must bring the old keys back.
"""

from __future__ import annotations

import asyncio
import uuid

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from services.common.settings import DatabaseSettings
from services.store import repository
from services.store.db import make_session_factory
from services.store.migrate import alembic_config, migrate
from services.store.settings import StoreSettings
from tests.services.harness import drop_database
from tests.services.messages import unique_track_id

VOICE = "v_" + "a" * 32


def test_answers_stored_before_are_served_after_the_upgrade_and_kept_by_the_downgrade() -> None:
    url = DatabaseSettings().database_url.rsplit("/", 1)[0] + f"/earshot_migration_{uuid.uuid4().hex[:8]}"
    base_track, voice_track, rejected_track = unique_track_id(), unique_track_id(), unique_track_id()
    try:
        migrate(StoreSettings(database_url=url), revision="0004")
        asyncio.run(_old_rows(url, base_track, voice_track, rejected_track))
        migrate(StoreSettings(database_url=url))
        states = asyncio.run(_states(url, base_track, voice_track, rejected_track))
        assert states == [("done", "1.0.0+old"), ("done", "1.0.0+old+voice.abc"), ("rejected", "")]
        command.downgrade(alembic_config(url), "0004")
        assert asyncio.run(_count(url, "voice_tracks", voice_track)) == 1
        assert asyncio.run(_count(url, "kws_results", base_track)) == 1
    finally:
        asyncio.run(drop_database(url))


async def _old_rows(url: str, base_track: str, voice_track: str, rejected_track: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        key = await connection.scalar(
            text("INSERT INTO api_keys (name, key_hash) VALUES ('old', :h) RETURNING id"),
            {"h": uuid.uuid4().hex},
        )
        await connection.execute(
            text(
                "INSERT INTO voices (voice_id, api_key_id, status, keyword_clips, free_speech_s) "
                "VALUES (:v, :k, 'ready', 30, 300)"
            ),
            {"v": VOICE, "k": key},
        )
        await connection.execute(
            text("INSERT INTO voice_tracks (voice_id, track_id) VALUES (:v, :t)"),
            {"v": VOICE, "t": voice_track},
        )
        rows = [
            (base_track, "", "done", "1.0.0+old"),
            (voice_track, VOICE, "done", "1.0.0+old+voice.abc"),
            (rejected_track, "", "rejected", None),
        ]
        for track_id, voice_id, status, version in rows:
            await connection.execute(
                text(
                    "INSERT INTO kws_results (track_id, voice_id, status, intervals, model_version, "
                    "received_at, processed_at) VALUES (:t, :v, :s, '[]', :m, now(), now())"
                ),
                {"t": track_id, "v": voice_id, "s": status, "m": version},
            )
    await engine.dispose()


async def _states(url: str, base_track: str, voice_track: str, rejected_track: str) -> list[tuple[str, str]]:
    engine = create_async_engine(url)
    states = []
    async with make_session_factory(engine)() as session:
        for track_id, voice_id in ((base_track, None), (voice_track, VOICE), (rejected_track, None)):
            status = await repository.track_status(session, track_id, voice_id)
            states.append((status.state, status.result.model_version if status.result else "?"))
    await engine.dispose()
    return states


async def _count(url: str, table: str, track_id: str) -> int:
    engine = create_async_engine(url)
    async with engine.connect() as connection:
        count = await connection.scalar(
            text(f"SELECT count(*) FROM {table} WHERE track_id = :t"), {"t": track_id}
        )
    await engine.dispose()
    return int(count)
