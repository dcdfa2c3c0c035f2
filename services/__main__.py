"""``python -m services run`` starts every service on loopback; ``python -m services demo`` shows both flows.

``run`` (``make run``): applies the migrations and the AMQP topology, starts the store (HTTP 8081), both
workers and the gateway (HTTP 8080; the Telegram bot too when EARSHOT_TELEGRAM_TOKEN is set), prints their
logs, and stops them all cleanly on Ctrl-C.
``demo`` (``make demo``): see ``services.demo``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from services.common.amqp import shutdown_event
from services.common.settings import CACHE_DIR
from services.demo import run_demo
from services.stack import WORKER_METRICS_PORTS, Stack, StackFailed, cancelled_by_signals


async def run_stack() -> int:
    stack = Stack(env={}, log_dir=CACHE_DIR / "run" / "logs", echo=True, metrics_ports=WORKER_METRICS_PORTS)
    stop = shutdown_event()
    try:
        await stack.prepare()
        await stack.start()
        await stack.wait_ready()
        print(
            f"\nEarshot is running: gateway {stack.gateway_url}, store {stack.store_url}. Ctrl-C stops it.\n"
        )
        exited = asyncio.create_task(stack.wait_for_exit())
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({exited, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if exited.done():
            service = exited.result()
            print(
                f"{service.name} exited with code {service.process.returncode}; stopping the rest",
                file=sys.stderr,
            )
            return 1
        exited.cancel()
        return 0
    except StackFailed as failure:
        print(f"Earshot could not start: {failure}", file=sys.stderr)
        return 1
    finally:
        print("Stopping: gateway, workers, then store ...")
        await stack.stop()
        print("All services stopped.")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="start every service on loopback until Ctrl-C")
    commands.add_parser(
        "demo", help="send the committed samples through a stack of its own and print the answers"
    )
    args = parser.parse_args(argv)
    if args.command == "run":
        sys.exit(asyncio.run(run_stack()))
    try:
        asyncio.run(cancelled_by_signals(run_demo()))
    except asyncio.CancelledError:
        print("Interrupted; the stack is stopped.", file=sys.stderr)
        sys.exit(130)
    except StackFailed as failure:
        print(f"The demo could not run: {failure}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
