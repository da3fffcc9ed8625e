#!/usr/bin/env python3
"""Run matrix-sydent (the reference identity server) on loopback for tests.

    run_sydent.py --smtp-port N [--port 0] [--internal-port 0]
                  [--server-name NAME] [--workdir DIR] [--db :memory:]
                  [--terms FILE] [--federation http|https]
                  [--log-level INFO] [--exit-on-stdin-eof]

Fills sydent.conf.template (next to this file) into a work directory, changes
into it and runs sydent in this process, in the foreground. Listening sockets
are bound here first, so --port 0 works and the email link carries the real
port. Once serving, prints exactly one line on stdout:

    READY <port>                      (or: READY <port> internal=<port>)

Everything else (sydent's log) goes to stderr. SIGTERM/SIGINT stop it (exit
0); so does EOF on stdin with --exit-on-stdin-eof. The work directory (it
holds only sydent.conf; the database is in memory unless --db names a file)
is deleted on exit unless --workdir was given.

Differences from running the stock `sydent` command, all for loopback tests:
  --federation http (default) builds Sydent(use_tls_for_federation=False), so
      sydent's calls to the homeserver (matrix://<server_name>/_matrix/
      federation/v1/openid/userinfo, .../3pid/onbind, /_matrix/key/v2/server)
      go over plain HTTP. The stock command always uses TLS (certificates
      unchecked with federation.verifycerts = False); --federation https
      keeps that. (.well-known lookups are https either way, but server
      names with an explicit port or an IP literal skip them.)
  Host names other than localhost/*.localhost/IP literals are never resolved
      and SRV lookups always answer "none", so sydent sends no DNS queries;
      the config's ip.blacklist/whitelist also limit it to loopback.
Needs the venv made by setup.sh (matrix-sydent[prometheus]).
"""

import argparse
import atexit
import contextlib
import logging
import os
import shutil
import socket
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
logger = logging.getLogger("run_sydent")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1", help="IPv4 address to bind")
    p.add_argument("--port", type=int, default=0, help="client API port, 0 = free")
    p.add_argument("--smtp-port", type=int, required=True)
    p.add_argument(
        "--internal-port",
        type=int,
        default=None,
        help="also serve the internal API (/_matrix/identity/internal/{bind,unbind},"
        " no auth) on 127.0.0.1:PORT; 0 = free port",
    )
    p.add_argument(
        "--server-name", default=None, help="sydent's server.name (default HOST:PORT)"
    )
    p.add_argument("--workdir", default=None, help="kept after exit if given")
    p.add_argument(
        "--db",
        default=":memory:",
        help="SQLite database; default :memory: (starts ~0.6 s faster than a file)",
    )
    p.add_argument("--terms", default="", help="terms YAML; default: no terms")
    p.add_argument("--federation", choices=("http", "https"), default="http")
    p.add_argument("--log-level", default="INFO")
    p.add_argument("--template", default=os.path.join(HERE, "sydent.conf.template"))
    p.add_argument(
        "--templates-path", default=os.path.join(HERE, "sydent-templates")
    )
    p.add_argument("--exit-on-stdin-eof", action="store_true")
    return p.parse_args()


def bind(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(50)
    s.setblocking(False)
    return s


def install_loopback_only_dns():
    """Refuse to resolve anything but loopback names; no SRV lookups."""
    from twisted.internet.abstract import isIPAddress, isIPv6Address
    from twisted.internet.interfaces import IHostnameResolver, IHostResolution
    from zope.interface import implementer

    import sydent.http.srvresolver

    async def no_srv(self, service_name):
        return []

    sydent.http.srvresolver.SrvResolver.resolve_service = no_srv

    @implementer(IHostResolution)
    class _Refused:
        def __init__(self, name):
            self.name = name

        def cancel(self):
            pass

    @implementer(IHostnameResolver)
    class LoopbackOnlyResolver:
        def __init__(self, real):
            self._real = real

        def resolveHostName(
            self,
            receiver,
            hostName,
            portNumber=0,
            addressTypes=None,
            transportSemantics="TCP",
        ):
            h = hostName.lower().rstrip(".")
            if (
                h == "localhost"
                or h.endswith(".localhost")
                or isIPAddress(h)
                or isIPv6Address(h.strip("[]"))
            ):
                return self._real.resolveHostName(
                    receiver, hostName, portNumber, addressTypes, transportSemantics
                )
            logger.warning("run_sydent: refusing to resolve non-loopback %r", hostName)
            resolution = _Refused(hostName)
            receiver.resolutionBegan(resolution)
            receiver.resolutionComplete()
            return resolution

    return LoopbackOnlyResolver


class ReactorProxy:
    """The real reactor, except listenTCP adopts sockets bound beforehand and
    nameResolver only resolves loopback names."""

    def __init__(self, reactor, prebound, resolver_cls):
        self._reactor = reactor
        self._prebound = prebound  # port -> bound socket
        self.nameResolver = resolver_cls(reactor.nameResolver)

    def listenTCP(self, port, factory, backlog=50, interface=""):
        sock = self._prebound.pop(port, None)
        if sock is None:
            return self._reactor.listenTCP(port, factory, backlog, interface)
        listening = self._reactor.adoptStreamPort(sock.fileno(), sock.family, factory)
        sock.close()  # twisted holds its own duplicate
        return listening

    def __getattr__(self, name):
        return getattr(self._reactor, name)


def main():
    args = parse_args()
    if args.terms and not os.path.isfile(args.terms):
        sys.exit("run_sydent: no terms file %s" % args.terms)  # sydent reads it lazily

    prebound = {}
    client_sock = bind(args.host, args.port)
    port = client_sock.getsockname()[1]
    prebound[port] = client_sock
    internal_port = ""
    if args.internal_port is not None:
        internal_sock = bind("127.0.0.1", args.internal_port)
        internal_port = internal_sock.getsockname()[1]
        prebound[internal_port] = internal_sock

    if args.db != ":memory:":
        args.db = os.path.abspath(args.db)
    own_workdir = args.workdir is None
    workdir = tempfile.mkdtemp(prefix="sydent-") if own_workdir else args.workdir
    os.makedirs(workdir, exist_ok=True)
    workdir = os.path.abspath(workdir)
    if own_workdir:
        atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    os.chdir(workdir)  # sydent resolves relative defaults against the CWD

    import signedjson.key
    from twisted.internet import reactor

    from sydent.config import SydentConfig
    from sydent.sydent import Sydent, setup_logging

    key = signedjson.key.generate_signing_key("0")
    signing_key = "%s %s %s" % (
        key.alg,
        key.version,
        signedjson.key.encode_signing_key_base64(key),
    )
    values = {
        "SERVER_NAME": args.server_name or "%s:%d" % (args.host, port),
        "LOG_LEVEL": args.log_level,
        "TEMPLATES_PATH": os.path.abspath(args.templates_path),
        "TERMS_PATH": os.path.abspath(args.terms) if args.terms else "",
        "DB_PATH": args.db,
        "HOST": args.host,
        "PORT": str(port),
        "INTERNAL_PORT": str(internal_port),
        "SMTP_PORT": str(args.smtp_port),
        "SIGNING_KEY": signing_key,
    }
    with open(args.template) as f:
        conf = f.read()
    for k, v in values.items():
        conf = conf.replace("@@%s@@" % k, v)
    conf_path = os.path.join(workdir, "sydent.conf")
    with open(conf_path, "w") as f:
        f.write(conf)

    cfg = SydentConfig()
    with contextlib.redirect_stdout(sys.stderr):  # sydent print()s warnings
        cfg.parse_config_file(conf_path)
    setup_logging(cfg)
    logger.info("run_sydent: work dir %s, config %s", workdir, conf_path)

    proxy = ReactorProxy(reactor, prebound, install_loopback_only_dns())
    syd = Sydent(cfg, reactor=proxy, use_tls_for_federation=args.federation == "https")

    ready = "READY %d" % port
    if internal_port != "":
        ready += " internal=%d" % internal_port
    reactor.callWhenRunning(lambda: print(ready, flush=True))

    if args.exit_on_stdin_eof:

        def watch_stdin():
            sys.stdin.buffer.read()
            reactor.callFromThread(reactor.stop)

        threading.Thread(target=watch_stdin, daemon=True).start()

    syd.run()  # listens, then reactor.run(); returns after SIGTERM/SIGINT


if __name__ == "__main__":
    main()
