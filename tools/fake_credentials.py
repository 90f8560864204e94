#!/usr/bin/env python3
"""A local stand-in for the AWS credential services, for evrec's tests (127.0.0.1 only).

Serves, over HTTP or HTTPS (--tls-dir):
  GET  /role-aliases/{alias}/credentials   AWS IoT credentials provider: needs a client
       certificate signed by the test CA (mutual TLS) and an x-amzn-iot-thingname header.
  POST /                                   Amazon Cognito Identity, JSON 1.1 protocol:
       X-Amz-Target AWSCognitoIdentityService.GetId / .GetCredentialsForIdentity,
       Content-Type application/x-amz-json-1.1, unsigned.
  /_t/echo?status=N&h=Name:Value&body=text&date=D  a chosen status, headers, body and Date;
       the answer echoes the request (method, path, headers, body length and SHA-256)
       when no body= is given.
  /_t/slow?ms=N[&stall=1]                  answer after N ms (stall: headers, then wait).
  /_t/huge?bytes=N[&chunked=1]             a body of N bytes (chunked: no Content-Length).
  /_t/reset                                 close the connection without answering.
  /_fake/stats                              counters: connections, iot, getid, getcreds.
  POST /_fake/config?expiry=S               seconds until issued credentials expire.

`--gen-certs DIR` writes a test PKI with the openssl command and exits: ca.pem/ca.key,
server.pem/server.key (SAN IP:127.0.0.1), client.pem/client.key (CN evrec-test-thing),
other-ca.pem/other-ca.key (an unrelated CA) and other-client.pem/other-client.key.

The port it listens on is written to --port-file as "PORT SCHEME".
"""
import argparse
import hashlib
import json
import os
import select
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

COGNITO_PREFIX = "AWSCognitoIdentityService."
JSON11 = "application/x-amz-json-1.1"


# -- test PKI ----------------------------------------------------------------------------

def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


def _make_ca(d, name, cn):
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", name + ".key", "-out", name + ".pem", "-days", "2",
             "-subj", "/CN=" + cn,
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)


def _make_leaf(d, name, ca, cn, ext):
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write(ext)
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn, cwd=d)
    _openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
             "-CAcreateserial", "-out", name + ".pem", "-days", "2",
             "-extfile", name + ".ext", cwd=d)


def gen_certs(d):
    os.makedirs(d, exist_ok=True)
    _make_ca(d, "ca", "evrec test CA")
    _make_ca(d, "other-ca", "unrelated test CA")
    _make_leaf(d, "server", "ca", "127.0.0.1",
               "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    _make_leaf(d, "client", "ca", "evrec-test-thing", "extendedKeyUsage=clientAuth\n")
    _make_leaf(d, "other-client", "other-ca", "evrec-test-thing",
               "extendedKeyUsage=clientAuth\n")


# -- the server --------------------------------------------------------------------------

class State:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.expiry = args.expiry
        self.role_alias = args.role_alias
        self.pool_id = args.pool_id
        self.identities = set()
        self.counters = {"connections": 0, "iot": 0, "getid": 0, "getcreds": 0}
        self.log = args.log

    def count(self, name):
        with self.lock:
            self.counters[name] += 1
            return self.counters[name]

    def record(self, entry):
        if not self.log:
            return
        with self.lock, open(self.log, "a") as f:
            f.write(json.dumps(entry) + "\n")


def _iso(ts):
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # refused handshakes and reset connections are part of the tests


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the services offer
    server_version = "fake-credentials/1"

    def setup(self):
        # The TLS handshake runs here, on the connection's own thread, so a slow or refused
        # client never holds up the accept loop.
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(10)
            try:
                self.request.do_handshake()
            except (ssl.SSLError, OSError):
                self._linger()
                raise
            self.request.settimeout(None)
        super().setup()
        self.server.state.count("connections")

    def _linger(self):
        # After a refused handshake the alert is on its way to the client; closing now with
        # the client's request unread would reset the connection and the alert could be lost.
        # Stop writing and read until the client hangs up, so it always sees the alert.
        fd = self.request.fileno()
        try:
            self.request.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:
                r, _, _ = select.select([fd], [], [], 0.1)
                if r and not os.read(fd, 65536):
                    break
        except OSError:
            pass

    def date_time_string(self, timestamp=None):
        # /_t/echo?date=<HTTP-date> answers with that Date (clock-skew and Retry-After tests)
        forced = getattr(self, "forced_date", None)
        return forced or super().date_time_string(timestamp)

    def log_message(self, fmt, *args):  # quiet: the tests read /_fake/stats and the log
        pass

    # helpers
    def _send(self, status, body=b"", headers=(), ctype="application/json"):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status, obj, headers=()):
        self._send(status, json.dumps(obj), headers)

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _cognito_error(self, status, kind, message):
        self._send(status, json.dumps({"__type": kind, "message": message}),
                   [("x-amzn-ErrorType", kind + ":"),
                    ("x-amzn-RequestId", str(uuid.uuid4()))], JSON11)

    # routes
    def do_GET(self):
        self._route(b"")

    def do_POST(self):
        self._route(self._body())

    def do_PUT(self):
        self._route(self._body())

    def do_DELETE(self):
        self._route(self._body())

    def _route(self, body):
        url = urlsplit(self.path)
        q = parse_qs(url.query, keep_blank_values=True)
        st = self.server.state
        st.record({"method": self.command, "path": url.path,
                   "headers": {k.lower(): v for k, v in self.headers.items()},
                   "body_len": len(body)})
        if url.path.startswith("/role-aliases/"):
            return self._iot(url.path)
        if url.path == "/" and self.command == "POST":
            return self._cognito(body)
        if url.path == "/_fake/stats":
            with st.lock:
                return self._json(200, dict(st.counters))
        if url.path == "/_fake/config":
            if "expiry" in q:
                st.expiry = int(q["expiry"][0])
            return self._json(200, {"expiry": st.expiry})
        if url.path == "/_t/echo":
            return self._echo(q, body)
        if url.path == "/_t/slow":
            return self._slow(q)
        if url.path == "/_t/huge":
            return self._huge(q)
        if url.path == "/_t/reset":
            self.close_connection = True
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.connection.close()
            return None
        return self._json(404, {"message": "no route " + url.path})

    def _echo(self, q, body):
        status = int(q.get("status", ["200"])[0])
        self.forced_date = q.get("date", [None])[0]
        headers = []
        for h in q.get("h", []):
            k, _, v = h.partition(":")
            headers.append((k, v))
        if "body" in q:
            return self._send(status, q["body"][0], headers, "text/plain")
        self._json(status, {"method": self.command, "path": self.path,
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                            "body_len": len(body),
                            "body_sha256": hashlib.sha256(body).hexdigest()}, headers)

    def _slow(self, q):
        ms = int(q.get("ms", ["1000"])[0])
        if "stall" in q:
            self.send_response(200)
            self.send_header("Content-Length", "10")
            self.end_headers()
            self.wfile.write(b"12345")
            self.wfile.flush()
            time.sleep(ms / 1000.0)
            self.close_connection = True
            return
        time.sleep(ms / 1000.0)
        self._json(200, {"slept_ms": ms})

    def _huge(self, q):
        n = int(q.get("bytes", ["2000000"])[0])
        chunk = b"x" * 65536
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        chunked = "chunked" in q
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(n))
        self.end_headers()
        try:
            left = n
            while left > 0:
                part = chunk[:min(left, len(chunk))]
                if chunked:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                else:
                    self.wfile.write(part)
                left -= len(part)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True

    def _iot(self, path):
        st = self.server.state
        parts = path.split("/")
        # ["", "role-aliases", alias, "credentials"]
        if len(parts) != 4 or parts[3] != "credentials" or self.command != "GET":
            return self._json(404, {"message": "unknown path"})
        peer = None
        if isinstance(self.connection, ssl.SSLSocket):
            peer = self.connection.getpeercert()
        if not peer:
            return self._json(403, {"message": "Client certificate required"})
        thing = self.headers.get("x-amzn-iot-thingname")
        if not thing:
            return self._json(400, {"message": "Missing x-amzn-iot-thingname"})
        if parts[2] != st.role_alias:
            return self._json(404, {"message": "Role alias does not exist"})
        n = st.count("iot")
        self._json(200, {"credentials": {
            "accessKeyId": "ASIAIOTTEST%06d" % n,
            "secretAccessKey": "iotSecret%04d/%s" % (n, uuid.uuid4().hex),
            "sessionToken": "iotToken%04d+%s" % (n, uuid.uuid4().hex),
            "expiration": _iso(time.time() + st.expiry)}})

    def _cognito(self, body):
        st = self.server.state
        target = self.headers.get("X-Amz-Target", "")
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if ctype != JSON11:
            return self._cognito_error(400, "SerializationException",
                                       "Content-Type must be " + JSON11)
        if self.headers.get("Authorization"):
            return self._cognito_error(400, "InvalidParameterException",
                                       "unauthenticated calls are not signed")
        try:
            req = json.loads(body or b"{}")
        except ValueError:
            return self._cognito_error(400, "SerializationException", "body is not JSON")
        op = target[len(COGNITO_PREFIX):] if target.startswith(COGNITO_PREFIX) else None
        if op == "GetId":
            pool = req.get("IdentityPoolId")
            if pool != st.pool_id:
                return self._cognito_error(400, "ResourceNotFoundException",
                                           "IdentityPool '%s' not found" % pool)
            st.count("getid")
            ident = "%s:%s" % (pool.split(":")[0], uuid.uuid4())
            with st.lock:
                st.identities.add(ident)
            return self._send(200, json.dumps({"IdentityId": ident}), (), JSON11)
        if op == "GetCredentialsForIdentity":
            ident = req.get("IdentityId")
            with st.lock:
                known = ident in st.identities
            if not known:
                return self._cognito_error(400, "ResourceNotFoundException",
                                           "Identity '%s' not found" % ident)
            n = st.count("getcreds")
            return self._send(200, json.dumps({"IdentityId": ident, "Credentials": {
                "AccessKeyId": "ASIACOGNITO%06d" % n,
                "SecretKey": "cognitoSecret%04d/%s" % (n, uuid.uuid4().hex),
                "SessionToken": "cognitoToken%04d+%s" % (n, uuid.uuid4().hex),
                "Expiration": int(time.time()) + st.expiry}}), (), JSON11)
        return self._cognito_error(400, "UnknownOperationException",
                                   "unknown X-Amz-Target '%s'" % target)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port-file")
    ap.add_argument("--log")
    ap.add_argument("--tls-dir", help="serve HTTPS with DIR/server.pem, ask for client certs "
                                      "signed by DIR/ca.pem")
    ap.add_argument("--gen-certs", metavar="DIR")
    ap.add_argument("--expiry", type=int, default=3600)
    ap.add_argument("--role-alias", default="evrec-role")
    ap.add_argument("--pool-id", default="us-east-1:00000000-0000-4000-8000-000000000001")
    args = ap.parse_args()
    if args.gen_certs:
        gen_certs(args.gen_certs)
        return 0
    if not args.port_file:
        ap.error("--port-file is required")
    srv = Server(("127.0.0.1", 0), Handler)
    srv.state = State(args)
    scheme = "http"
    if args.tls_dir:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(args.tls_dir, "server.pem"),
                            os.path.join(args.tls_dir, "server.key"))
        ctx.load_verify_locations(os.path.join(args.tls_dir, "ca.pem"))
        # Optional: a certificate is checked if sent (a wrong one fails the handshake), and
        # the IoT route refuses a connection that sent none.
        ctx.verify_mode = ssl.CERT_OPTIONAL
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True,
                                     do_handshake_on_connect=False)
        scheme = "https"
    port = srv.server_address[1]
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d %s\n" % (port, scheme))
    os.replace(tmp, args.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
