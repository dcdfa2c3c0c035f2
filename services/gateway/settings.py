"""Gateway configuration, read from ``EARSHOT_*`` environment variables."""

from __future__ import annotations

from typing import Literal

from services.common.audio import AudioLimits
from services.common.enrollment import EnrollmentLimits
from services.common.settings import BrokerSettings, DatabaseSettings
from services.store.settings import DonationSettings


class GatewaySettings(BrokerSettings, DatabaseSettings, DonationSettings, EnrollmentLimits):
    """Everything the gateway needs: where the broker and database are, Telegram, HTTP and upload limits."""

    # Telegram. Without a token the gateway serves HTTP only.
    telegram_token: str | None = None
    # Bot API root; the demo and the tests point it at a local stand-in (aiogram's TelegramAPIServer).
    telegram_api_base: str = "https://api.telegram.org"
    telegram_mode: Literal["polling", "webhook"] = "polling"
    # Webhook mode: the public URL Telegram posts to, and the secret it must echo in
    # X-Telegram-Bot-Api-Secret-Token. The route is served by the gateway's HTTP app.
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: str | None = None
    telegram_webhook_path: str = "/telegram/webhook"
    # Long-polling wait per getUpdates call, seconds.
    telegram_polling_timeout: int = 10

    # HTTP ingest for client apps.
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    # Where clients fetch results; returned in the 202 answer so a client knows where to look.
    store_public_url: str = "http://127.0.0.1:8081"

    # Upload limits, checked before a job is published.
    max_upload_bytes: int = 20 * 1024 * 1024
    max_voice_duration_s: float = 120.0
    max_track_duration_s: float = 600.0
    # Audio up to this size travels inside the job; larger tracks go by reference to a blob.
    inline_audio_max_bytes: int = 512 * 1024

    # WS /v1/streams (docs/protocol.md): limits per stream and per key, and the streaming detector.
    stream_max_duration_s: float = 600.0
    stream_max_bytes: int = 64 * 1024 * 1024
    stream_max_message_bytes: int = 1024 * 1024
    stream_idle_timeout_s: float = 10.0
    stream_max_per_key: int = 4
    # Threads running the model for every stream of this gateway; a stream's chunk waits for a free one.
    stream_inference_threads: int = 2
    # Right context a frame's score waits for before the detector acts on it (see services/kws/streaming.py).
    stream_lookahead_ms: float = 20.0
    # Right context that confirms a run before its interval is sent (a keyword is confirmed as it closes).
    stream_confirm_ms: float = 200.0
    # Audio gathered before the model runs again for a stream (each run costs about the same): a keyword's
    # interval waits for the next run, so 20 ms (one run per 20 ms chunk) sends it 20 ms sooner than 40 ms.
    stream_scan_hop_ms: float = 20.0
    # The same while nothing can be decided soon (no run open or pending, no score near the threshold): an
    # interval is sent when its run closes, so an idle stream is scanned less often at no cost in delay.
    stream_idle_scan_hop_ms: float = 100.0

    # Fair use, per chat and counted in PostgreSQL (so it holds across gateway replicas): at most
    # rate_limit_recordings recordings per rate_limit_window_s. The same file forwarded again within the
    # window gets no job either. A throttled notice (rate limit, "send audio") goes out once per
    # notice_interval_s, so a flood of updates gets one answer, not one each.
    rate_limit_recordings: int = 10
    rate_limit_window_s: float = 600.0
    notice_interval_s: float = 60.0

    # Queue backed up: when the estimated wait for a new recording exceeds this, "Слушаю…" says so.
    # The estimate is the ready jobs in cry.classify over the rate the store wrote cry results in the last
    # backlog_rate_window_s.
    backlog_notice_s: float = 30.0
    backlog_rate_window_s: float = 300.0

    @property
    def voice_limits(self) -> AudioLimits:
        return AudioLimits(max_bytes=self.max_upload_bytes, max_duration_s=self.max_voice_duration_s)

    @property
    def track_limits(self) -> AudioLimits:
        return AudioLimits(max_bytes=self.max_upload_bytes, max_duration_s=self.max_track_duration_s)
