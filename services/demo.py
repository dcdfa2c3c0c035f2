"""``make demo``: both flows end to end on this machine, with committed samples, then everything stops.

1. A stack of its own (database and RabbitMQ vhost ``earshot_demo``, HTTP on 8090/8091) is set up and started,
   with the gateway's bot pointed at a local Telegram Bot API stand-in.
2. A parent's voice note (``samples/cry/``) reaches the bot as a Telegram update; the bot's reply is printed,
   then the parent taps «🍼 >3 ч» (over three hours since the last feed) and the answer, edited in place, is
   printed again.
3. A client app posts a playback track (``samples/playback/``) with a fresh API key; its ``skip_kws``
   intervals are fetched from the store and printed.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from services.common.settings import CACHE_DIR, REPO_ROOT
from services.gateway import replies
from services.gateway.__main__ import create_api_key
from services.gateway.admission import probe_duration
from services.gateway.settings import GatewaySettings
from services.gateway.telegram_standin import SentMessage, TelegramStandIn
from services.stack import Stack, isolated_env

DEMO_NAME = "earshot_demo"
DEMO_HTTP_PORT, DEMO_STORE_PORT = 8090, 8091
DEMO_TOKEN = "424242:earshot-demo-token"
DEMO_CHAT_ID = 777
CRY_SAMPLE = REPO_ROOT / "samples" / "cry" / "hungry-donateacry.ogg"
PLAYBACK_SAMPLE = REPO_ROOT / "samples" / "playback" / "keyword.flac"
ANSWER_TIMEOUT_S = 180.0
CONTEXT_TAP = "🍼 >3 ч"


async def run_demo() -> None:
    standin = TelegramStandIn(DEMO_TOKEN)
    api_base = await standin.start()
    env = await isolated_env(DEMO_NAME, DEMO_HTTP_PORT, DEMO_STORE_PORT) | {
        "EARSHOT_TELEGRAM_TOKEN": DEMO_TOKEN,
        "EARSHOT_TELEGRAM_API_BASE": api_base,
        "EARSHOT_TELEGRAM_POLLING_TIMEOUT": "1",
    }
    stack = Stack(env, log_dir=CACHE_DIR / DEMO_NAME / "logs")
    try:
        print(f"1/3 Starting the stack (database and vhost {DEMO_NAME!r}; logs in {stack.log_dir}) ...")
        await stack.prepare()
        await stack.start()
        await stack.wait_ready()
        print(f"    gateway {stack.gateway_url}, store {stack.store_url}, Telegram stand-in {api_base}\n")
        await send_voice_note(standin, stack)
        api_key = await create_api_key("demo", GatewaySettings(database_url=env["EARSHOT_DATABASE_URL"]))
        await send_playback_track(stack, api_key)
    finally:
        print("Stopping the stack ...")
        await stack.stop()
        await standin.stop()


async def send_voice_note(standin: TelegramStandIn, stack: Stack) -> None:
    audio = CRY_SAMPLE.read_bytes()
    duration_s = probe_duration(audio, GatewaySettings().voice_limits)
    # A new message id each run: the demo database remembers every (chat_id, message_id) it has answered.
    message = standin.media_message(
        "voice", audio, chat_id=DEMO_CHAT_ID, message_id=int(time.time()), duration_s=round(duration_s)
    )
    sample = CRY_SAMPLE.relative_to(REPO_ROOT)
    print(f"2/3 A parent sends a voice note to the bot: {sample} ({duration_s:.1f} s)")
    await standin.deliver(message)
    answer = await wait_for_answer(standin, stack)
    print("    The bot answers:\n")
    print_quoted(answer.text)
    await tap_context_button(standin, answer, CONTEXT_TAP)


async def tap_context_button(standin: TelegramStandIn, answer: SentMessage, button_text: str) -> None:
    """The parent taps one context button; the bot edits its answer in place with that context."""
    callback_data = answer.button(button_text)["callback_data"]
    await standin.tap(answer, callback_data)
    await standin.wait_for(lambda: standin.current_text(answer.chat_id, answer.message_id) != answer.text)
    print(f"    The parent taps «{button_text}» (over 3 h since the last feed); the answer now reads:\n")
    print_quoted(standin.current_text(answer.chat_id, answer.message_id))


def print_quoted(text: str) -> None:
    print("\n".join(f"    | {line}" for line in text.splitlines()))
    print()


async def wait_for_answer(standin: TelegramStandIn, stack: Stack) -> SentMessage:
    """The bot's reply with the result (not its "listening…" acknowledgement)."""
    deadline = time.monotonic() + ANSWER_TIMEOUT_S
    while time.monotonic() < deadline:
        stack.check_running()
        answers = [m for m in standin.sent if m.text not in replies.ACCEPTED.values()]
        if answers:
            return answers[0]
        await asyncio.sleep(0.2)
    raise TimeoutError(
        f"no answer from the bot within {ANSWER_TIMEOUT_S:.0f} s; see the logs in {stack.log_dir}"
    )


async def send_playback_track(stack: Stack, api_key: str) -> None:
    audio = PLAYBACK_SAMPLE.read_bytes()
    print(f"3/3 A client app posts a playback track: {PLAYBACK_SAMPLE.relative_to(REPO_ROOT)}")
    headers = {"X-API-Key": api_key}
    async with httpx.AsyncClient(timeout=60) as client:
        posted = await client.post(f"{stack.gateway_url}/v1/tracks", content=audio, headers=headers)
        posted.raise_for_status()
        track_id = posted.json()["track_id"]
        print(f"    POST /v1/tracks -> {posted.status_code} {posted.json()['status']}, track_id {track_id}")
        deadline = time.monotonic() + ANSWER_TIMEOUT_S
        while True:
            stack.check_running()
            result = await client.get(
                f"{stack.store_url}/v1/tracks/{track_id}/skip-kws?wait=20", headers=headers
            )
            if result.status_code != 202 or time.monotonic() > deadline:
                break
    print(f"    GET /v1/tracks/{track_id[:12]}…/skip-kws -> {result.status_code}")
    body = result.json()
    if body.get("status") != "done":
        print(f"    {body}")
        return
    print(f"    {body['duration_ms']} ms of playback, model {body['model_version']}; skip_kws intervals:")
    for interval in body["skip_kws"]:
        start_ms, end_ms, score = interval["start_ms"], interval["end_ms"], interval["score"]
        print(f"    mute the microphone {start_ms} – {end_ms} ms (score {score:.2f})")
    if not body["skip_kws"]:
        print("    none: the wake word was not found")
    print()
