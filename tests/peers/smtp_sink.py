#!/usr/bin/env python3
"""SMTP sink for black-box tests: accepts every message and stores it as a file.

    smtp_sink.py --port 0 --maildir DIR [--host 127.0.0.1] [--exit-on-stdin-eof]

Listens with plain SMTP (no TLS). AUTH PLAIN and AUTH LOGIN are offered and
accept any credentials; clients that never authenticate are accepted too.
Each message is written as DIR/<ns-timestamp>-<seq>.eml holding the raw
RFC 5322 bytes the client sent after DATA (dot-unstuffed, CRLF line ends),
first to a dot-file in DIR and then renamed, so a reader never sees half a file.

A recipient whose local part starts with "refused" is refused for good
(550), as a real server refuses an unknown mailbox.

Once listening, prints exactly one line on stdout: "READY <port>" (the real
port, useful with --port 0). Stops on SIGTERM or SIGINT (exit 0), and with
--exit-on-stdin-eof also when its standard input closes (parent died).
Needs aiosmtpd (see setup.sh).
"""

import argparse
import asyncio
import itertools
import logging
import os
import signal
import sys
import time

from aiosmtpd.smtp import SMTP, AuthResult


class MaildirHandler:
    def __init__(self, maildir):
        self.maildir = maildir
        self.seq = itertools.count(1)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower().startswith("refused"):
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        name = "%d-%06d" % (time.time_ns(), next(self.seq))
        tmp = os.path.join(self.maildir, ".%s.tmp" % name)
        with open(tmp, "wb") as f:
            f.write(envelope.original_content)
        os.rename(tmp, os.path.join(self.maildir, name + ".eml"))
        print(
            "smtp_sink: stored %s.eml from %s to %s"
            % (name, envelope.mail_from, ",".join(envelope.rcpt_tos)),
            file=sys.stderr,
            flush=True,
        )
        return "250 OK stored"


def accept_any_credentials(server, session, envelope, mechanism, auth_data):
    return AuthResult(success=True)


async def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--maildir", required=True)
    p.add_argument("--exit-on-stdin-eof", action="store_true")
    args = p.parse_args()
    # aiosmtpd logs a deprecation warning on every AUTH; keep stderr quiet.
    logging.getLogger("mail.log").setLevel(logging.ERROR)

    os.makedirs(args.maildir, exist_ok=True)
    handler = MaildirHandler(os.path.abspath(args.maildir))
    loop = asyncio.get_running_loop()

    def factory():
        return SMTP(
            handler,
            hostname="smtp-sink.localhost",
            auth_require_tls=False,
            authenticator=accept_any_credentials,
            data_size_limit=None,
        )

    server = await loop.create_server(factory, host=args.host, port=args.port)
    port = server.sockets[0].getsockname()[1]

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if args.exit_on_stdin_eof:
        loop.run_in_executor(None, sys.stdin.buffer.read).add_done_callback(
            lambda _f: stop.set()
        )

    print("READY %d" % port, flush=True)
    await stop.wait()
    server.close()
    await server.wait_closed()


if __name__ == "__main__":
    asyncio.run(main())
    # Do not wait for the stdin reader thread (it may block forever).
    sys.stdout.flush()
    os._exit(0)
