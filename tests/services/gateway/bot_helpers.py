"""What the bot tests share: fresh chats, waiting for jobs, reading the bot's answers."""

from __future__ import annotations

import uuid

from aio_pika.abc import AbstractIncomingMessage

from services.common.contracts import CryJob
from services.common.topology import CRY_CLASSIFY_QUEUE
from services.gateway import replies
from services.gateway.telegram_standin import SentMessage, TelegramStandIn
from tests.audio_files import encode, tone
from tests.services.harness import BrokerProbe, eventually

VOICE = encode(tone(3.0, 16000), 16000, "ogg")
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


def listening_message(standin: TelegramStandIn, chat_id: int) -> SentMessage:
    """The bot's "Слушаю…" message in ``chat_id`` (the one later edited into the answer)."""
    return next(
        m
        for m in standin.sent
        if m.chat_id == chat_id
        and m.method == "sendMessage"
        and m.text.startswith(tuple(replies.ACCEPTED.values()))
    )
