"""The store's configuration, from ``EARSHOT_*`` environment variables."""

from services.common.blobs import BlobSettings
from services.common.settings import BrokerSettings, DatabaseSettings


class StoreSettings(BrokerSettings, DatabaseSettings, BlobSettings):
    """Broker, database and blob directory, plus the store's HTTP and retry knobs."""

    store_host: str = "127.0.0.1"
    store_port: int = 8081
    # The longest a client may long-poll GET skip-kws with ?wait=; larger values are clamped to this.
    max_wait_s: float = 30.0
    # Backoff while the database is unreachable: results stay unacked in the queue and the write is retried.
    db_retry_initial_s: float = 0.2
    db_retry_max_s: float = 5.0
