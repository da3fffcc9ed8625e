#!/usr/bin/env python3
"""End-to-end check of the test peers; what the Rust tests will rely on.

    tests/peers/setup.sh && python3 tests/peers/selftest.py

Starts two independent smtp_sink + sydent pairs in parallel (port 0), runs the
v1 flow (requestToken -> mail -> submitToken -> getValidated3pid -> bind ->
lookup -> unbind) on both, and the v2 flow (account/register through a fake
homeserver's /_matrix/federation/v1/openid/userinfo over plain HTTP, then
requestToken/submitToken/bind with the token, and the bind callback to
/_matrix/federation/v1/3pid/onbind) on one. Stops everything with SIGTERM and
checks the exit codes. Standard library only; the peers run from the venv.
Ends with 'N passed, N failed'.
"""

import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
VENV = os.environ.get(
    "VESTIBULE_PEERS_VENV", os.path.expanduser("~/.cache/vestibule-peers-venv")
)
PY = os.path.join(VENV, "bin", "python")

passed = 0
failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
        print("ok   " + what)
    else:
        failed += 1
        print("FAIL " + what)


def call(method, url, body=None, token=None):
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = "Bearer " + token
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def jcall(*a, **kw):
    status, text = call(*a, **kw)
    return status, json.loads(text)


def start(args, log):
    """Start a peer, wait for 'READY <port> ...' on its stdout."""
    t0 = time.monotonic()
    p = subprocess.Popen(
        [PY] + args, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.PIPE, text=True
    )
    line = p.stdout.readline()
    if not line.startswith("READY "):
        raise RuntimeError("%s did not start: %r" % (args[0], line))
    return p, int(line.split()[1]), time.monotonic() - t0


def stop(p, name):
    t0 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(timeout=15)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = "killed"
    check(rc == 0, "%s exits 0 on SIGTERM (rc=%s, %.2fs)" % (name, rc, time.monotonic() - t0))


def newest_mail(maildir, before):
    files = sorted(set(glob.glob(os.path.join(maildir, "*.eml"))) - before)
    return files[-1] if files else None


class FakeHomeserver(BaseHTTPRequestHandler):
    """Just enough federation API for sydent: openid userinfo + onbind."""

    server_name = None
    onbind = []

    def _send(self, code, obj):
        b = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)

    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(u.query)
        if u.path == "/_matrix/federation/v1/openid/userinfo":
            if q.get("access_token") == ["openid-token-for-alice"]:
                return self._send(200, {"sub": "@alice:" + self.server_name})
            return self._send(401, {"errcode": "M_UNKNOWN_TOKEN", "error": "no"})
        self._send(404, {"errcode": "M_UNRECOGNIZED", "error": "no"})

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/_matrix/federation/v1/3pid/onbind":
            FakeHomeserver.onbind.append(
                (json.loads(body), self.headers.get("Authorization"))
            )
            return self._send(200, {})
        self._send(404, {"errcode": "M_UNRECOGNIZED", "error": "no"})

    def log_message(self, *a):
        pass


def v1_flow(tag, sydent, maildir):
    email = "User.%s@Example.org" % tag
    secret = "secret-%s" % tag
    before = set(glob.glob(os.path.join(maildir, "*.eml")))
    st, r = jcall(
        "POST",
        sydent + "/_matrix/identity/api/v1/validate/email/requestToken",
        {"client_secret": secret, "email": email, "send_attempt": 1},
    )
    check(st == 200 and re.fullmatch(r"\d+", r.get("sid", "")), "[%s] requestToken -> sid %r" % (tag, r))
    sid = r["sid"]
    mail = newest_mail(maildir, before)  # sydent sends before it answers
    check(mail is not None, "[%s] mail stored by the time requestToken answered" % tag)
    raw = open(mail, "rb").read().decode()
    token = re.search(r"the code is ([A-Za-z0-9]+)", raw).group(1)
    link = re.search(r"(http://\S+/submitToken\?\S+)", raw).group(1)
    q = urllib.parse.parse_qs(urllib.parse.urlparse(link).query)
    check(
        q == {"token": [token], "client_secret": [secret], "sid": [sid]}
        and ("To: %s" % email) in raw,
        "[%s] mail has token %s and link %s" % (tag, token, link),
    )

    st, r = jcall(
        "GET",
        sydent + "/_matrix/identity/api/v1/3pid/getValidated3pid?"
        + urllib.parse.urlencode({"sid": sid, "client_secret": secret}),
    )
    check(st == 400 and r["errcode"] == "M_SESSION_NOT_VALIDATED", "[%s] not validated yet" % tag)

    st, r = jcall(
        "POST",
        sydent + "/_matrix/identity/api/v1/validate/email/submitToken",
        {"sid": sid, "client_secret": secret, "token": "wrong"},
    )
    check(st == 200 and r["success"] is False, "[%s] wrong token: 200 success=false %r" % (tag, r))
    st, r = jcall(
        "POST",
        sydent + "/_matrix/identity/api/v1/validate/email/submitToken",
        {"sid": sid, "client_secret": secret, "token": token},
    )
    check(st == 200 and r == {"success": True}, "[%s] submitToken" % tag)

    st, r = jcall(
        "GET",
        sydent + "/_matrix/identity/api/v1/3pid/getValidated3pid?"
        + urllib.parse.urlencode({"sid": sid, "client_secret": secret}),
    )
    check(
        st == 200 and r["medium"] == "email" and r["address"] == email
        and isinstance(r["validated_at"], int),
        "[%s] getValidated3pid %r" % (tag, r),
    )

    mxid = "@u%s:127.0.0.1:9" % tag  # port 9: nothing listens, onbind retried
    st, r = jcall(
        "POST",
        sydent + "/_matrix/identity/api/v1/3pid/bind",
        {"sid": sid, "client_secret": secret, "mxid": mxid},
    )
    check(
        st == 200 and r["address"] == email.casefold() and r["mxid"] == mxid
        and set(r) == {"medium", "address", "mxid", "ts", "not_before", "not_after", "signatures"},
        "[%s] bind %r" % (tag, r),
    )
    st, r = jcall(
        "GET",
        sydent + "/_matrix/identity/api/v1/lookup?"
        + urllib.parse.urlencode({"medium": "email", "address": email.casefold()}),
    )
    check(st == 200 and r.get("mxid") == mxid, "[%s] lookup finds binding" % tag)

    # address must be the session's address as typed (not casefolded)
    st, r = jcall(
        "POST",
        sydent + "/_matrix/identity/api/v1/3pid/unbind",
        {"sid": sid, "client_secret": secret, "mxid": mxid,
         "threepid": {"medium": "email", "address": email.casefold()}},
    )
    check(st == 403 and r["errcode"] == "M_FORBIDDEN", "[%s] unbind with casefolded address: 403" % tag)
    st, r = jcall(
        "POST",
        sydent + "/_matrix/identity/api/v1/3pid/unbind",
        {"sid": sid, "client_secret": secret, "mxid": mxid,
         "threepid": {"medium": "email", "address": email}},
    )
    check(st == 200 and r == {}, "[%s] unbind with sid+client_secret" % tag)
    st, r = jcall(
        "GET",
        sydent + "/_matrix/identity/api/v1/lookup?"
        + urllib.parse.urlencode({"medium": "email", "address": email.casefold()}),
    )
    check(st == 200 and r == {}, "[%s] lookup empty after unbind" % tag)


def v2_flow(sydent, maildir, hs_name):
    st, r = jcall(
        "POST",
        sydent + "/_matrix/identity/v2/account/register",
        {"access_token": "openid-token-for-alice", "token_type": "Bearer",
         "matrix_server_name": hs_name, "expires_in": 3600},
    )
    check(st == 200 and r.get("token") and r["token"] == r.get("access_token"), "[v2] register %r" % r)
    tok = r["token"]
    st, r = jcall(
        "POST",
        sydent + "/_matrix/identity/v2/account/register",
        {"access_token": "bogus", "matrix_server_name": hs_name},
    )
    check(st == 500 and r["errcode"] == "M_UNKNOWN", "[v2] register with bad openid token: 500 %r" % r)
    st, r = jcall("GET", sydent + "/_matrix/identity/v2/account", token=tok)
    check(st == 200 and r == {"user_id": "@alice:" + hs_name}, "[v2] account %r" % r)
    st, r = jcall("GET", sydent + "/_matrix/identity/v2/terms")
    check(st == 200 and r == {"policies": {}}, "[v2] no terms configured %r" % r)

    before = set(glob.glob(os.path.join(maildir, "*.eml")))
    body = {"client_secret": "v2secret", "email": "alice@example.org", "send_attempt": 1}
    st, r = jcall("POST", sydent + "/_matrix/identity/v2/validate/email/requestToken", body)
    check(st == 401 and r["errcode"] == "M_UNAUTHORIZED", "[v2] requestToken needs the token")
    st, r = jcall("POST", sydent + "/_matrix/identity/v2/validate/email/requestToken", body, tok)
    check(st == 200 and "sid" in r, "[v2] requestToken %r" % r)
    sid = r["sid"]
    raw = open(newest_mail(maildir, before), "rb").read().decode()
    token = re.search(r"the code is ([A-Za-z0-9]+)", raw).group(1)
    st, r = jcall(
        "POST",
        sydent + "/_matrix/identity/v2/validate/email/submitToken",
        {"sid": sid, "client_secret": "v2secret", "token": token},
        tok,
    )
    check(st == 200 and r == {"success": True}, "[v2] submitToken")
    st, r = jcall(
        "POST",
        sydent + "/_matrix/identity/v2/3pid/bind",
        {"sid": sid, "client_secret": "v2secret", "mxid": "@bob:" + hs_name},
        tok,
    )
    check(st == 403, "[v2] bind to another user's mxid: 403")
    st, r = jcall(
        "POST",
        sydent + "/_matrix/identity/v2/3pid/bind",
        {"sid": sid, "client_secret": "v2secret", "mxid": "@alice:" + hs_name},
        tok,
    )
    check(st == 200 and r["mxid"] == "@alice:" + hs_name, "[v2] bind")
    for _ in range(50):
        if FakeHomeserver.onbind:
            break
        time.sleep(0.1)
    ok = bool(FakeHomeserver.onbind)
    check(
        ok and FakeHomeserver.onbind[0][0]["mxid"] == "@alice:" + hs_name
        and FakeHomeserver.onbind[0][1] is None,
        "[v2] sydent POSTed the signed association, unauthenticated, to the HS's"
        " /_matrix/federation/v1/3pid/onbind",
    )


def main():
    if not os.path.exists(PY):
        sys.exit("no venv at %s: run tests/peers/setup.sh" % VENV)
    tmp = tempfile.mkdtemp(prefix="peers-selftest-")
    hs = ThreadingHTTPServer(("127.0.0.1", 0), FakeHomeserver)
    hs_name = "127.0.0.1:%d" % hs.server_address[1]
    FakeHomeserver.server_name = hs_name
    threading.Thread(target=hs.serve_forever, daemon=True).start()

    procs = []
    pairs = []
    try:
        for tag in ("a", "b"):
            maildir = os.path.join(tmp, "mail-" + tag)
            log = open(os.path.join(tmp, "log-" + tag), "w")
            sink, smtp_port, t_sink = start(
                [os.path.join(HERE, "smtp_sink.py"), "--port", "0", "--maildir", maildir], log
            )
            procs.append(("smtp_sink " + tag, sink))
            pairs.append([tag, maildir, smtp_port, t_sink, log])
        # both sydents start at the same time
        launches = []
        for pair in pairs:
            t0 = time.monotonic()
            p = subprocess.Popen(
                [PY, os.path.join(HERE, "run_sydent.py"), "--smtp-port", str(pair[2])],
                stdout=subprocess.PIPE, stderr=pair[4], stdin=subprocess.PIPE, text=True,
            )
            procs.append(("sydent " + pair[0], p))
            launches.append((pair, p, t0))
        for pair, p, t0 in launches:
            line = p.stdout.readline()
            check(line.startswith("READY "), "sydent %s says %r" % (pair[0], line.strip()))
            port = int(line.split()[1])
            print("     smtp_sink ready in %.2fs, sydent in %.2fs" % (pair[3], time.monotonic() - t0))
            rss = int(open("/proc/%d/status" % p.pid).read().split("VmRSS:")[1].split()[0])
            print("     sydent RSS %d MiB" % (rss // 1024))
            pair.append("http://127.0.0.1:%d" % port)

        for tag, maildir, _, _, _, sydent in pairs:
            v1_flow(tag, sydent, maildir)
        v2_flow(pairs[0][5], pairs[0][1], hs_name)
    finally:
        for name, p in procs:
            stop(p, name)
        hs.shutdown()
        for pair in pairs:
            pair[4].close()
            m = re.search(r"run_sydent: work dir (\S+),", open(pair[4].name).read())
            check(m and not os.path.exists(m.group(1)), "sydent %s removed its work dir" % pair[0])
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
