"""What the bot tests share: fresh chats, waiting for jobs, reading the bot's answers."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

from aio_pika.abc import AbstractIncomingMessage

from services.common.contracts import CryJob, CryResult
from services.common.settings import REPO_ROOT
from services.common.topology import CRY_CLASSIFY_QUEUE, CRY_RESULT_KEY, RESULTS_EXCHANGE
from services.gateway import replies
from services.gateway.telegram_standin import SentMessage, TelegramStandIn
from tests.audio_files import encode, tone
from tests.services.harness import BrokerProbe, eventually

PROBABILITIES = {"hungry": 0.7, "tired": 0.2, "burping": 0.06, "discomfort": 0.03, "belly_pain": 0.01}

VOICE = encode(tone(3.0, 16000), 16000, "ogg")
# What the first answer in a chat with no age band is rendered with: it invites the parent to give the age.
FIRST_ANSWER = replies.AnswerContext(invite_age=True)
# Long enough for the last handler to finish after its reply was recorded (a duplicate sends nothing).
SETTLE_S = 1.0


def new_chat() -> int:
    """A chat id no other test uses (the test database lives for the whole run)."""
    return 10**9 + uuid.uuid4().int % 10**11


async def wait_for_jobs(broker: BrokerProbe, count: int, timeout_s: float = 20.0) -> list[CryJob]:
    """Wait until ``count`` cry jobs are ready, then take them all."""

    async def ready() -> bool:
        return (await broker.ready_and_consumers(CRY_CLASSIFY_QUEUE))[0] >= count

    await eventually(ready, timeout_s, f"{count} cry job(s)")
    messages: list[AbstractIncomingMessage] = await broker.drain(CRY_CLASSIFY_QUEUE)
    return [CryJob.model_validate_json(message.body) for message in messages]


def answers(standin: TelegramStandIn) -> list[SentMessage]:
    """What the bot said besides "Слушаю…"."""
    return [m for m in standin.sent if m.text not in replies.ACCEPTED.values()]


def listening_message(standin: TelegramStandIn, chat_id: int, reply_to: int | None = None) -> SentMessage:
    """The bot's "Слушаю…" message in ``chat_id`` (the one later edited into the answer), the first one or
    the one replying to voice note ``reply_to``."""
    return next(
        m
        for m in standin.sent
        if m.chat_id == chat_id
        and m.method == "sendMessage"
        and m.text.startswith(tuple(replies.ACCEPTED.values()))
        and reply_to in (None, m.reply_to_message_id)
    )


def result_for(job: CryJob, probabilities: dict[str, float] = PROBABILITIES) -> CryResult:
    """The "ok" result a worker would publish for ``job``, naming the likeliest of ``probabilities``."""
    return CryResult(
        request_id=job.request_id,
        chat_id=job.chat_id,
        message_id=job.message_id,
        language=job.language,
        status="ok",
        label=max(probabilities, key=probabilities.__getitem__),
        probabilities=probabilities,
        quality={"reason": None},
        model_version="test",
        message="",
        received_at=job.received_at,
    )


async def answered_voice_note(
    standin: TelegramStandIn, broker: BrokerProbe, chat: int, message_id: int, language: str = "ru"
) -> tuple[SentMessage, str]:
    """A voice note sent through the bot, its result stored by the real store, the answer edited in.

    Returns the answer (the edited "Слушаю…" message) and the request id.
    """
    await standin.deliver(
        standin.media_message("voice", VOICE, chat_id=chat, message_id=message_id, language_code=language)
    )
    [job] = await wait_for_jobs(broker, 1)
    await broker.publish(result_for(job), RESULTS_EXCHANGE, CRY_RESULT_KEY, message_id=job.request_id)
    listening = listening_message(standin, chat, message_id)

    async def edited() -> bool:
        return any(
            m.message_id == listening.message_id and m.method == "editMessageText" for m in standin.sent
        )

    await eventually(edited, 30, "the answer")
    answer = next(
        m for m in standin.sent if m.message_id == listening.message_id and m.method == "editMessageText"
    )
    return answer, job.request_id


def store_command(command: str, **env: str) -> str:
    """Run ``python -m services.store <command>`` with this run's environment (plus ``env``); its output."""
    return subprocess.run(
        [sys.executable, "-m", "services.store", command],
        env={**os.environ, **env},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
