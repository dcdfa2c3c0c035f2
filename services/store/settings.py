"""The store's configuration, from ``EARSHOT_*`` environment variables."""

from pydantic import SecretStr

from services.common.blobs import BlobSettings
from services.common.settings import BrokerSettings, DatabaseSettings, EarshotSettings


class DonationSettings(EarshotSettings):
    """How long donated audio is kept: the bot tells parents this figure, the store's purge enforces it."""

    donation_retention_days: int = 90


class StoreSettings(BrokerSettings, DatabaseSettings, BlobSettings, DonationSettings):
    """Broker, database and blob directory, plus the store's HTTP and retry knobs."""

    store_host: str = "127.0.0.1"
    store_port: int = 8081
    # The longest a client may long-poll GET skip-kws with ?wait=; larger values are clamped to this.
    max_wait_s: float = 30.0
    # Backoff while the database is unreachable: results stay unacked in the queue and the write is retried.
    db_retry_initial_s: float = 0.2
    db_retry_max_s: float = 5.0
    # The /ops status page: the admin key's sha256 (unset turns the page's data off), and where the RabbitMQ
    # management API is (queue depths, rates, consumers).
    admin_key_sha256: str | None = None
    management_url: str = "http://127.0.0.1:15672"
    management_user: str = "guest"
    management_password: SecretStr = SecretStr("guest")
    # How often the running store deletes donated audio past its retention.
    donation_purge_interval_s: float = 3600.0
