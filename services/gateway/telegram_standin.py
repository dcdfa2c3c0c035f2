"""A local stand-in for the Telegram Bot API, for the demo and the bot tests.

It implements only what the bot uses (getMe, getUpdates with long polling, getFile and file download,
sendMessage, editMessageText, editMessageReplyMarkup, answerCallbackQuery, sendChatAction, setMyCommands,
setWebhook, deleteWebhook) over real HTTP, refusing an edit that changes nothing as Telegram does ("message is
not modified"), so aiogram talks to it exactly as to Telegram once
``EARSHOT_TELEGRAM_API_BASE`` points here (aiogram's ``TelegramAPIServer``). The Python side queues updates
as a user would send them (messages, forwards, button taps) and reads what the bot sent back.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from services.gateway.asgi_server import BackgroundServer

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are exactly the "
    "same as a current content and reply markup of the message"
)
BOT_USER = {"id": 100000001, "is_bot": True, "first_name": "Earshot", "username": "earshot_standin_bot"}


@dataclass
class StoredFile:
    file_id: str
    file_path: str
    data: bytes


@dataclass
class SentMessage:
    """One message the bot sent (or edited), as the stand-in recorded it."""

    method: str
    chat_id: int
    text: str
    message_id: int
    reply_to_message_id: int | None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def keyboard(self) -> list[list[dict[str, Any]]]:
        """The inline keyboard sent with the message (rows of buttons), empty when there is none."""
        markup = self.params.get("reply_markup")
        if not markup:
            return []
        return (json.loads(markup) if isinstance(markup, str) else markup).get("inline_keyboard", [])

    def button(self, text_contains: str) -> dict[str, Any]:
        """The first button whose text contains ``text_contains``."""
        for row in self.keyboard:
            for button in row:
                if text_contains in button["text"]:
                    return button
        raise KeyError(f"no button with {text_contains!r} in {self.keyboard}")


class TelegramStandIn:
    """Holds pending updates, uploaded files and the bot's messages; ``app`` serves them as the Bot API."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.pending_updates: list[dict[str, Any]] = []
        self.files: dict[str, StoredFile] = {}
        self.sent: list[SentMessage] = []
        self.chat_actions: list[tuple[int, str]] = []
        self.downloads: list[str] = []
        self.callback_answers: list[dict[str, Any]] = []
        # Faults a test can inject: chats that blocked the bot (403), sendMessage / editMessageText calls to
        # fail with a 500.
        self.blocked_chats: set[int] = set()
        self.failing_sends = 0
        self.webhook: dict[str, Any] | None = None
        # The command menus the bot registered, by language code ("" for the default).
        self.commands: dict[str, list[dict[str, str]]] = {}
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(500000)
        self._file_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._server: BackgroundServer | None = None
        self.app = self._build_app()

    # The user's side ---------------------------------------------------------------------------------------

    def add_file(self, data: bytes, extension: str = "oga") -> StoredFile:
        number = next(self._file_ids)
        stored = StoredFile(
            file_id=f"standin-file-{number}", file_path=f"voice/file_{number}.{extension}", data=data
        )
        self.files[stored.file_id] = stored
        return stored

    def media_message(
        self,
        kind: str,
        data: bytes,
        *,
        chat_id: int,
        message_id: int,
        duration_s: int | None = None,
        language_code: str = "ru",
        mime_type: str = "audio/ogg",
        declared_size: int | None = None,
        file_unique_id: str | None = None,
    ) -> dict[str, Any]:
        """A Bot API ``Message`` carrying ``data`` as a voice note, audio, document or video note."""
        stored = self.add_file(data)
        media: dict[str, Any] = {
            "file_id": stored.file_id,
            "file_unique_id": file_unique_id or f"unique-{stored.file_id}",
            "file_size": len(data) if declared_size is None else declared_size,
        }
        if kind in ("voice", "audio", "video_note"):
            media["duration"] = duration_s if duration_s is not None else 1
        if kind == "video_note":
            media["length"] = 240
        else:
            media["mime_type"] = mime_type
        return self.text_message("", chat_id=chat_id, message_id=message_id, language_code=language_code) | {
            kind: media
        }

    def text_message(
        self, text: str, *, chat_id: int, message_id: int, language_code: str = "ru"
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": "Parent"},
            "from": {"id": chat_id, "is_bot": False, "first_name": "Parent", "language_code": language_code},
        }
        if text:
            message["text"] = text
            if text.startswith("/"):
                message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        return message

    @staticmethod
    def forwarded(message: dict[str, Any], message_id: int) -> dict[str, Any]:
        """The same message forwarded back into the chat: a new message id, the same file."""
        origin = {"type": "user", "date": message["date"], "sender_user": message["from"]}
        return message | {"message_id": message_id, "date": int(time.time()), "forward_origin": origin}

    async def deliver(self, message: dict[str, Any]) -> dict[str, Any]:
        """Queue an update carrying ``message`` for the next getUpdates; returns the update."""
        return await self._queue_update({"message": message})

    async def tap(
        self, sent: SentMessage, callback_data: str, *, language_code: str = "ru"
    ) -> dict[str, Any]:
        """The user taps an inline button (its ``callback_data``) under the bot's message ``sent``."""
        user = {"id": sent.chat_id, "is_bot": False, "first_name": "Parent", "language_code": language_code}
        query = {
            "id": f"standin-callback-{next(self._callback_ids)}",
            "from": user,
            "chat_instance": f"instance-{sent.chat_id}",
            "data": callback_data,
            "message": {
                "message_id": sent.message_id,
                "date": int(time.time()),
                "chat": {"id": sent.chat_id, "type": "private", "first_name": "Parent"},
                "from": BOT_USER,
                "text": sent.text,
            },
        }
        return await self._queue_update({"callback_query": query})

    def current_text(self, chat_id: int, message_id: int) -> str:
        """What the bot's message reads now, after its edits."""
        texts = [
            m.text
            for m in self.sent
            if m.chat_id == chat_id and m.message_id == message_id and m.method != "editMessageReplyMarkup"
        ]
        return texts[-1]

    async def wait_for(self, condition, timeout: float = 30.0) -> None:
        """Wait until ``condition()`` holds (checked whenever the bot calls the stand-in)."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(condition), timeout)

    async def _queue_update(self, body: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": next(self._update_ids), **body}
        async with self._changed:
            self.pending_updates.append(update)
            self._changed.notify_all()
        return update

    async def wait_for_sent(self, count: int, timeout: float = 30.0) -> list[SentMessage]:
        """Wait until the bot has sent at least ``count`` messages; returns all of them."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(self.sent) >= count), timeout)
            return list(self.sent)

    async def wait_until_polled_empty(self, timeout: float = 30.0) -> None:
        """Wait until the bot has confirmed every queued update (it asked for updates past them)."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: not self.pending_updates), timeout)

    # Serving -----------------------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve the Bot API; returns the base URL for ``EARSHOT_TELEGRAM_API_BASE``."""
        self._server = BackgroundServer(self.app, host, port)
        await self._server.start()
        return self._server.url

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()

    def _build_app(self) -> FastAPI:
        app = FastAPI(title="Telegram Bot API stand-in")

        @app.api_route("/bot{token}/{method}", methods=["GET", "POST"])
        async def call_method(token: str, method: str, request: Request) -> JSONResponse:
            if token != self.token:
                return _error(401, "Unauthorized")
            handler = self._methods().get(method.lower())
            if handler is None:
                return _error(404, f"Not Found: method {method} is not implemented by the stand-in")
            params = await _read_params(request)
            if self._unchanged_by(method.lower(), params):
                return _error(400, NOT_MODIFIED)
            if method.lower() in ("sendmessage", "editmessagetext"):
                if int(params["chat_id"]) in self.blocked_chats:
                    return _error(403, "Forbidden: bot was blocked by the user")
                if self.failing_sends > 0:
                    self.failing_sends -= 1
                    return _error(500, "Internal Server Error")
            return JSONResponse({"ok": True, "result": await handler(params)})

        @app.get("/file/bot{token}/{file_path:path}")
        async def download(token: str, file_path: str) -> Response:
            if token != self.token:
                return _error(401, "Unauthorized")
            for stored in self.files.values():
                if stored.file_path == file_path:
                    self.downloads.append(stored.file_id)
                    return Response(stored.data, media_type="application/octet-stream")
            return _error(404, "Not Found")

        return app

    def _unchanged_by(self, method: str, params: dict[str, Any]) -> bool:
        """Whether an edit would leave the message exactly as it is (its text and its buttons)."""
        if method not in ("editmessagetext", "editmessagereplymarkup"):
            return False
        chat_id, message_id = int(params["chat_id"]), int(params["message_id"])
        versions = [m for m in self.sent if m.chat_id == chat_id and m.message_id == message_id]
        if not versions:
            return False
        edited = SentMessage(method, chat_id, params.get("text", versions[-1].text), message_id, None, params)
        return edited.text == versions[-1].text and edited.keyboard == versions[-1].keyboard

    def _methods(self):
        return {
            "getme": self._get_me,
            "getupdates": self._get_updates,
            "getfile": self._get_file,
            "sendmessage": self._send_message,
            "editmessagetext": self._edit_message_text,
            "editmessagereplymarkup": self._edit_message_reply_markup,
            "answercallbackquery": self._answer_callback_query,
            "sendchataction": self._send_chat_action,
            "setwebhook": self._set_webhook,
            "setmycommands": self._set_my_commands,
            "deletewebhook": self._delete_webhook,
        }

    async def _get_me(self, params: dict[str, Any]) -> dict[str, Any]:
        return BOT_USER

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        async with self._changed:
            self.pending_updates = [u for u in self.pending_updates if u["update_id"] >= offset]
            self._changed.notify_all()
            if not self.pending_updates and timeout > 0:
                try:
                    await asyncio.wait_for(
                        self._changed.wait_for(lambda: bool(self.pending_updates)), timeout
                    )
                except TimeoutError:
                    return []
            return list(self.pending_updates)

    async def _get_file(self, params: dict[str, Any]) -> dict[str, Any]:
        stored = self.files[params["file_id"]]
        return {
            "file_id": stored.file_id,
            "file_unique_id": f"unique-{stored.file_id}",
            "file_size": len(stored.data),
            "file_path": stored.file_path,
        }

    async def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        reply_to = None
        if "reply_parameters" in params:
            reply_to = json.loads(params["reply_parameters"])["message_id"]
        elif "reply_to_message_id" in params:
            reply_to = int(params["reply_to_message_id"])
        sent = SentMessage(
            method="sendMessage",
            chat_id=int(params["chat_id"]),
            text=params["text"],
            message_id=next(self._message_ids),
            reply_to_message_id=reply_to,
            params=params,
        )
        return await self._record(sent)

    async def _edit_message_text(self, params: dict[str, Any]) -> dict[str, Any]:
        sent = SentMessage(
            method="editMessageText",
            chat_id=int(params["chat_id"]),
            text=params["text"],
            message_id=int(params["message_id"]),
            reply_to_message_id=None,
            params=params,
        )
        return await self._record(sent)

    async def _edit_message_reply_markup(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id, message_id = int(params["chat_id"]), int(params["message_id"])
        sent = SentMessage(
            method="editMessageReplyMarkup",
            chat_id=chat_id,
            text=self.current_text(chat_id, message_id),
            message_id=message_id,
            reply_to_message_id=None,
            params=params,
        )
        return await self._record(sent)

    async def _answer_callback_query(self, params: dict[str, Any]) -> bool:
        async with self._changed:
            self.callback_answers.append(params)
            self._changed.notify_all()
        return True

    async def _record(self, sent: SentMessage) -> dict[str, Any]:
        async with self._changed:
            self.sent.append(sent)
            self._changed.notify_all()
        return {
            "message_id": sent.message_id,
            "date": int(time.time()),
            "chat": {"id": sent.chat_id, "type": "private"},
            "from": BOT_USER,
            "text": sent.text,
        }

    async def _send_chat_action(self, params: dict[str, Any]) -> bool:
        self.chat_actions.append((int(params["chat_id"]), params["action"]))
        return True

    async def _set_my_commands(self, params: dict[str, Any]) -> bool:
        commands = params["commands"]
        self.commands[params.get("language_code") or ""] = (
            json.loads(commands) if isinstance(commands, str) else commands
        )
        return True

    async def _set_webhook(self, params: dict[str, Any]) -> bool:
        self.webhook = params
        return True

    async def _delete_webhook(self, params: dict[str, Any]) -> bool:
        self.webhook = None
        return True


async def _read_params(request: Request) -> dict[str, Any]:
    """Bot API parameters arrive as a query string, a form (aiogram's way) or a JSON body."""
    params: dict[str, Any] = dict(request.query_params)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        params.update(await request.json())
    elif content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        form = await request.form()
        params.update({key: value for key, value in form.items() if isinstance(value, str)})
    return params


def _error(code: int, description: str) -> JSONResponse:
    return JSONResponse({"ok": False, "error_code": code, "description": description}, status_code=code)
