"""Runs localstripe (a local Stripe API fake, from the test venv) for tests.

usage: localstripe_server.py PORT

Unlike `localstripe --port PORT`, this binds 127.0.0.1 only (the CLI binds every interface) and
keeps its state in memory only (the CLI pickles it to /tmp/localstripe.pickle after every write,
shared by every instance on the machine). Prints "listening PORT" once ready and stops cleanly on
SIGTERM or SIGINT.

What works and how to call it: see tests/src/stripe.rs (`LocalStripe`) and
tests/tests/stripe_peers.rs.
"""
import asyncio
import logging
import signal
import sys

from aiohttp import web
from localstripe import resources, server

port = int(sys.argv[1])

# No pickling: every write otherwise dumps the whole store to a fixed path in /tmp, and start-up
# would load whatever another instance left there.
resources.Store.dump_to_disk = lambda self: None
resources.Store.try_load_from_disk = lambda self: None

logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                    format="localstripe: %(message)s")


async def main():
    runner = web.AppRunner(server.app, access_log=logging.getLogger("aiohttp.access"),
                           shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host="127.0.0.1", port=port)
    await site.start()
    print(f"listening {port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


asyncio.run(main())
