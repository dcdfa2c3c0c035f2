"""The parent's answer through the real gateway, classifier worker and store: every status, both languages.

A voice note goes in through the Bot API stand-in; "Слушаю…" comes back at once and is edited in place into
the answer rendered from the result the store wrote. A job the worker gives up on gets an honest message.
"""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.classifier.calibration import Calibration
from services.classifier.inference import ModelMetadata
from services.classifier.settings import ClassifierSettings
from services.common.contracts import CryResult
from services.common.settings import REPO_ROOT
from services.common.topology import CRY_CLASSIFY_QUEUE, GATEWAY_REPLIES_QUEUE, JOBS_EXCHANGE
from services.gateway import replies
from services.store import repository
from services.store.models import CryRequest, Prediction
from tests.audio_files import encode, tone
from tests.services.harness import eventually, wait_until_serving

from .bot_helpers import FIRST_ANSWER, VOICE, listening_message, new_chat, wait_for_jobs

SAMPLES = REPO_ROOT / "samples" / "cry"
QUIET = encode(tone(6.0, 16000, level=0.0005), 16000, "ogg")
pytestmark = pytest.mark.slow


async def stored_result(sessions: async_sessionmaker[AsyncSession], request_id: str) -> CryResult | None:
    async with sessions() as session:
        request = await session.get(CryRequest, request_id)
        prediction = await session.get(Prediction, request_id)
    if request is None or prediction is None:
        return None
    return repository.stored_cry_result(request, prediction)


def temperature_only_model(directory: Path) -> Path:
    """The shipped file with the previous calibration (its own temperature, no shrink to the prior).

    The shipped calibration gives every cry the training prior, so no recording could be `not_sure`; with
    one temperature the samples still spread over both sides of the shipped not-sure threshold.
    """
    model = onnx.load(str(ClassifierSettings().model_path))
    properties = {prop.key: prop.value for prop in model.metadata_props}
    metadata = ModelMetadata.from_properties(properties)
    calibration = Calibration.temperature_only(metadata.calibration.temperature, len(metadata.labels))
    onnx.helper.set_model_props(model, {**properties, "calibration": calibration.to_json()})
    path = directory / "cry_model_temperature_only.onnx"
    onnx.save(model, str(path))
    return path


async def test_each_status_is_answered_in_place_in_the_parents_language(
    start_gateway, start_service, store_url, broker, sessions, tmp_path
) -> None:
    store = start_service("store")
    classifier = start_service("classifier", EARSHOT_MODEL_PATH=str(temperature_only_model(tmp_path)))
    await wait_until_serving(store_url, store)
    await broker.wait_for_consumers(CRY_CLASSIFY_QUEUE, timeout_s=60, started=classifier)
    gateway = await start_gateway(max_upload_bytes=20_000_000, max_voice_duration_s=120.0)
    standin = gateway.standin
    cases = [
        ("hungry-donateacry.ogg", "ru", "ok"),
        ("tired-donateacry.ogg", "en", "not_sure"),
        ("dog-esc10.ogg", "en", "not_a_cry"),
        (QUIET, "ru", "bad_audio"),
    ]
    chats = {}
    for message_id, (sample, language, status) in enumerate(cases, start=1):
        audio = sample if isinstance(sample, bytes) else (SAMPLES / sample).read_bytes()
        chat = new_chat()
        chats[chat] = (language, status)
        await standin.deliver(
            standin.media_message(
                "voice", audio, chat_id=chat, message_id=message_id, duration_s=7, language_code=language
            )
        )

    for message_id, (chat, (language, status)) in enumerate(chats.items(), start=1):
        request_id = f"tg:{chat}:{message_id}"
        await eventually(
            lambda chat=chat: _edited(standin, chat),
            90,
            f"the answer to the {status} recording, edited in place",
        )
        listening = listening_message(standin, chat)
        assert listening.text == replies.ACCEPTED[language] and listening.reply_to_message_id == message_id
        result = await stored_result(sessions, request_id)
        assert result is not None and result.status == status
        [answer] = [m for m in standin.sent if m.chat_id == chat and m.method == "editMessageText"]
        assert answer.message_id == listening.message_id
        told = FIRST_ANSWER if replies.asks_for_feedback(result) else replies.NO_CONTEXT
        assert answer.text == replies.render_result(result, told)
        assert answer.text.endswith(replies.DISCLAIMER[language])
        assert bool(answer.keyboard) == (status in ("ok", "not_sure"))
        assert not [m for m in standin.sent if m.chat_id == chat and m.method == "sendMessage"][1:]


async def _edited(standin, chat: int) -> bool:
    return any(m.chat_id == chat and m.method == "editMessageText" for m in standin.sent)


async def test_a_job_the_worker_gives_up_on_gets_an_honest_answer(
    start_gateway, start_service, store_url, broker
) -> None:
    store = start_service("store")
    await wait_until_serving(store_url, store)
    gateway = await start_gateway()
    standin = gateway.standin
    chat = new_chat()
    await standin.deliver(
        standin.media_message("voice", VOICE, chat_id=chat, message_id=3, language_code="en")
    )
    [job] = await wait_for_jobs(broker, 1)
    # The job arrives damaged (not a contract): the real worker gives up on it at once.
    await broker.publish_raw(b"{not a job", JOBS_EXCHANGE, CRY_CLASSIFY_QUEUE, message_id=job.request_id)
    classifier = start_service("classifier")
    await broker.wait_for_consumers(CRY_CLASSIFY_QUEUE, timeout_s=60, started=classifier)

    await eventually(lambda: _edited(standin, chat), 60, "the failure answer")
    [answer] = [m for m in standin.sent if m.chat_id == chat and m.method == "editMessageText"]
    assert answer.message_id == listening_message(standin, chat).message_id
    assert answer.text == replies.render_failure("en")
    assert await broker.drain(GATEWAY_REPLIES_QUEUE) == []
