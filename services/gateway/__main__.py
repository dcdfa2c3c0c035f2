"""``python -m services.gateway run`` starts the gateway; ``create-api-key NAME`` prints a new client key."""

from __future__ import annotations

import argparse
import asyncio

from services.common.logs import configure_logging
from services.gateway.runtime import serve
from services.gateway.settings import GatewaySettings
from services.store import repository
from services.store.db import make_engine, make_session_factory


async def create_api_key(name: str, settings: GatewaySettings) -> str:
    engine = make_engine(settings)
    try:
        async with make_session_factory(engine)() as session:
            return await repository.create_api_key(session, name)
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.gateway", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="serve HTTP ingest and, with EARSHOT_TELEGRAM_TOKEN, the bot")
    key_parser = commands.add_parser("create-api-key", help="create and print a client X-API-Key")
    key_parser.add_argument("name", help="who the key is for, e.g. the client app's name")
    args = parser.parse_args(argv)

    configure_logging()
    settings = GatewaySettings()
    if args.command == "run":
        asyncio.run(serve(settings))
    else:
        print(asyncio.run(create_api_key(args.name, settings)))


if __name__ == "__main__":
    main()
