"""Contracts on the wire and the worker's retry schedule, without a broker."""

from services.common.contracts import AudioPayload, CryJob
from services.common.worker import WorkerSettings, retry_delay_s
from services.store.results import parse_result
from tests.services.messages import cry_result, kws_done, unique_track_id


def test_inline_audio_survives_json_even_when_it_is_not_utf8() -> None:
    audio = bytes(range(256)) * 4
    job = CryJob(
        request_id="tg:1:2", chat_id=1, message_id=2, audio=AudioPayload(inline=audio, size_bytes=1024)
    )

    assert CryJob.model_validate_json(job.to_body()).audio.inline == audio


def test_the_store_tells_result_contracts_apart() -> None:
    cry, kws = cry_result(), kws_done(unique_track_id())

    assert parse_result(cry.to_body()) == cry
    assert parse_result(kws.to_body()) == kws


def test_retry_backoff_grows_and_is_capped() -> None:
    settings = WorkerSettings(retry_delay_s=2.0, retry_delay_max_s=60.0)

    delays = [retry_delay_s(attempt, settings) for attempt in (1, 2, 3, 4)]

    assert delays == [2.0, 8.0, 32.0, 60.0]
