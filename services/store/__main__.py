"""The store's command line.

- ``run``: results consumer + HTTP on 8081 (and the hourly purge of donated audio past its retention);
- ``migrate``: create the database if missing and apply the schema;
- ``replay-dlq QUEUE``: move dead-lettered messages back after a fix;
- ``create-admin-key``: a key for ``/ops``;
- ``export-definitions``: write ``deploy/rabbitmq/definitions.json`` from the code's AMQP topology;
- ``feedback-report``: live accuracy and confusion from parents' feedback in the bot;
- ``purge-donations``: delete donated audio kept longer than ``EARSHOT_DONATION_RETENTION_DAYS``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from services.common.logs import configure_logging
from services.store.settings import StoreSettings


async def print_feedback_report(settings: StoreSettings) -> None:
    from services.store import repository
    from services.store.db import make_engine, make_session_factory
    from services.store.feedback_report import build_report, render_report

    engine = make_engine(settings)
    try:
        async with make_session_factory(engine)() as session:
            answers = await repository.rated_answers(session)
    finally:
        await engine.dispose()
    print(render_report(build_report(answers)))


async def purge_donations(settings: StoreSettings) -> None:
    from services.store.db import make_engine, make_session_factory
    from services.store.donations import purge_expired_donations

    engine = make_engine(settings)
    try:
        deleted = await purge_expired_donations(make_session_factory(engine), settings)
    finally:
        await engine.dispose()
    print(f"Deleted {deleted} donated recording(s) older than {settings.donation_retention_days} days.")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.store", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="consume store.results and serve the HTTP API until SIGTERM/Ctrl-C")
    commands.add_parser("migrate", help="create the database if missing and apply the Alembic migrations")
    replay = commands.add_parser("replay-dlq", help="move QUEUE.dlq's messages back to QUEUE")
    replay.add_argument("queue", help="the work queue, e.g. cry.classify, kws.scan, store.results")
    replay.add_argument("--limit", type=int, default=None, help="move at most this many (default: all)")
    commands.add_parser("export-definitions", help="write deploy/rabbitmq/definitions.json from the topology")
    commands.add_parser("create-admin-key", help="print a new /ops admin key and the sha256 to configure")
    commands.add_parser("feedback-report", help="print live accuracy and confusion from parents' feedback")
    commands.add_parser("purge-donations", help="delete donated audio past EARSHOT_DONATION_RETENTION_DAYS")
    arguments = parser.parse_args(argv)
    configure_logging()
    if arguments.command == "replay-dlq":
        from services.store.replay import run_replay

        sys.exit(run_replay(arguments.queue, arguments.limit))
    if arguments.command == "create-admin-key":
        from services.store.ops import new_admin_key

        raw_key, key_sha256 = new_admin_key()
        print(f"admin key (give it to the operators; shown once): {raw_key}")
        print(f"EARSHOT_ADMIN_KEY_SHA256={key_sha256}")
        return
    if arguments.command == "export-definitions":
        from services.common.broker_definitions import export_definitions

        print(f"wrote {export_definitions()}")
        return
    settings = StoreSettings()
    if arguments.command == "migrate":
        from services.store.migrate import migrate

        migrate(settings)
    elif arguments.command == "feedback-report":
        asyncio.run(print_feedback_report(settings))
    elif arguments.command == "purge-donations":
        asyncio.run(purge_donations(settings))
    else:
        from services.store.service import serve

        asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
