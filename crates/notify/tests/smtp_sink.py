"""An SMTP server for arflow's tests: aiosmtpd, storing what it receives.

    python3 smtp_sink.py DIR [DELAY_MS]

Listens on a free port of 127.0.0.1 and prints "READY <port>" once it
accepts connections. Each message received is written as DIR/NNNN.eml (the
DATA exactly as sent) and then DIR/NNNN.json ({"mail_from", "rcpt_tos"}),
so a reader that sees the .json can read both. Recipients containing
"reject" get 550 (permanent), containing "busy" get 451 (transient). Exits
when its standard input closes, so it never outlives the test that ran it.
DELAY_MS makes it wait before acknowledging DATA: the crash-safety test
uses it to widen the moment in which a killed sender cannot know whether
the server accepted the message.
"""

import asyncio
import itertools
import json
import os
import socket
import sys

from aiosmtpd.controller import Controller


class Store:
    def __init__(self, directory, delay_ms=0):
        self.directory = directory
        self.delay = delay_ms / 1000.0
        self.numbers = itertools.count(1)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if "reject" in address:
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        if "busy" in address:
            return "451 4.3.0 <%s>: Mailbox temporarily unavailable" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        n = next(self.numbers)
        base = os.path.join(self.directory, "%04d" % n)
        with open(base + ".eml", "wb") as f:
            f.write(envelope.original_content)
        with open(base + ".json.tmp", "w") as f:
            json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos}, f)
        os.rename(base + ".json.tmp", base + ".json")
        return "250 2.0.0 Ok: queued as ARFLOW%04d" % n


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    directory = sys.argv[1]
    delay_ms = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    controller = Controller(Store(directory, delay_ms), hostname="127.0.0.1", port=free_port())
    controller.start()
    print("READY %d" % controller.port, flush=True)
    try:
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
