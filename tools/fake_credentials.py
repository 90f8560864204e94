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
  POST /  (form-encoded)                   AWS STS, Query protocol: AssumeRole (SigV4 checked
       by botocore's signer against the source keys: --sts-source-key/--sts-source-secret or
       any credentials this fake issued) and AssumeRoleWithWebIdentity (unsigned; the token
       must be --web-token). A role ARN containing "denied" is refused (AccessDenied); one
       ending in "/needs-external-id" wants ExternalId "ext-123". XML answers.
  PUT  /latest/api/token, GET /latest/meta-data/...   EC2 instance metadata, IMDSv2 only:
       every GET needs a token from the PUT (401 without); role "evrec-instance-role",
       placement/region "eu-north-1".
  GET  /v2/credentials/{id}                 ECS container credentials (relative URI).
  GET  /container/credentials               a full-URI container endpoint (EKS Pod Identity,
       Greengrass token exchange): Authorization must be --container-token.
  GET  /federation/credentials?account_id=&role_name=   IAM Identity Center
       GetRoleCredentials: x-amz-sso_bearer_token must be --sso-token.
  /_fake/stats                              counters: connections, iot, getid, getcreds, sts,
       web_identity, imds_token, imds, container, sso.
  /_fake/last_sts                           the last STS request's form (without the token),
       its signing region and access key id.
  POST /_fake/config?expiry=S               seconds until issued credentials expire;
       &fail=NAME&times=N&status=S: the next N requests of NAME (sts, web_identity, imds,
       container, sso) answer status S (default 500).

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
from xml.sax.saxutils import escape as xml_escape

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

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
        self.counters = {"connections": 0, "iot": 0, "getid": 0, "getcreds": 0, "sts": 0,
                         "web_identity": 0, "imds_token": 0, "imds": 0, "container": 0,
                         "sso": 0}
        self.log = args.log
        # access key id -> (secret, token): who may sign AssumeRole
        self.signers = {args.sts_source_key: (args.sts_source_secret, None)}
        self.web_token = args.web_token
        self.container_token = args.container_token
        self.sso_token = args.sso_token
        self.imds_tokens = set()
        self.fail = {}  # name -> [times, status]
        self.last_sts = {}

    def issue(self, prefix, name, expiry=None):
        """New temporary credentials, registered as a signer for AssumeRole."""
        n = self.count(name)
        key = "%s%06d" % (prefix, n)
        secret = "%sSecret%04d/%s" % (name, n, uuid.uuid4().hex)
        token = "%sToken%04d+%s" % (name, n, uuid.uuid4().hex)
        with self.lock:
            self.signers[key] = (secret, token)
        return key, secret, token, time.time() + (expiry or self.expiry)

    def failing(self, name):
        with self.lock:
            f = self.fail.get(name)
            if not f or f[0] <= 0:
                return None
            f[0] -= 1
            self.counters[name] += 1  # the counters count requests, refused ones too
            return f[1]

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
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if url.path == "/" and self.command == "POST" and \
                ctype == "application/x-www-form-urlencoded":
            return self._sts(body)
        if url.path == "/" and self.command == "POST":
            return self._cognito(body)
        if url.path.startswith("/latest/"):
            return self._imds(url.path)
        if url.path.startswith("/v2/credentials/") or url.path == "/container/credentials":
            return self._container(url.path)
        if url.path == "/federation/credentials":
            return self._sso(q)
        if url.path == "/_fake/last_sts":
            with st.lock:
                return self._json(200, dict(st.last_sts))
        if url.path == "/_fake/stats":
            with st.lock:
                return self._json(200, dict(st.counters))
        if url.path == "/_fake/config":
            if "expiry" in q:
                st.expiry = int(q["expiry"][0])
            if "fail" in q:
                with st.lock:
                    st.fail[q["fail"][0]] = [int(q.get("times", ["1"])[0]),
                                             int(q.get("status", ["500"])[0])]
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


class _ReceivedSigner(SigV4Auth):
    """botocore's SigV4 over the request as received: its X-Amz-Date, its signed headers."""

    def __init__(self, credentials, region, signed, received):
        super().__init__(credentials, "sts", region)
        self._signed = signed
        self._received = received

    def headers_to_sign(self, request):
        m = HTTPHeaders()
        for name in self._signed:
            for value in self._received.get_all(name) or []:
                m[name] = value
        return m


def _sts_error(handler, status, code, message):
    body = ("<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error>"
            "<Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error>"
            "<RequestId>%s</RequestId></ErrorResponse>" % (code, xml_escape(message),
                                                           uuid.uuid4()))
    handler._send(status, body, (), "text/xml")


class CredentialRoutes:
    """STS, IMDS, container and SSO routes (mixed into Handler)."""

    def _fail_if_asked(self, name):
        status = self.server.state.failing(name)
        if status is None:
            return False
        self._json(status, {"message": "injected failure of " + name})
        return True

    def _sts(self, body):
        st = self.server.state
        form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
        action = form.get("Action")
        if form.get("Version") != "2011-06-15":
            return _sts_error(self, 400, "InvalidAction", "Version must be 2011-06-15")
        name = "sts" if action == "AssumeRole" else "web_identity"
        if action not in ("AssumeRole", "AssumeRoleWithWebIdentity"):
            return _sts_error(self, 400, "InvalidAction", "unknown Action %s" % action)
        if self._fail_if_asked(name):
            return None
        arn = form.get("RoleArn", "")
        record = {k: v for k, v in form.items() if k != "WebIdentityToken"}
        if action == "AssumeRole":
            err = self._sts_signature(body, record)
            if err:
                return _sts_error(self, 403, *err)
        else:
            if self.headers.get("Authorization"):
                return _sts_error(self, 400, "InvalidParameterValue",
                                  "AssumeRoleWithWebIdentity is not signed")
            if form.get("WebIdentityToken") != st.web_token:
                return _sts_error(self, 400, "InvalidIdentityToken", "the token is not valid")
        with st.lock:
            st.last_sts = record
        if not arn.startswith("arn:aws:iam::") or ":role/" not in arn:
            return _sts_error(self, 400, "ValidationError", "RoleArn is not a role ARN")
        if "denied" in arn:
            return _sts_error(self, 403, "AccessDenied",
                              "User is not authorized to perform: sts:AssumeRole on " + arn)
        if arn.endswith("/needs-external-id") and form.get("ExternalId") != "ext-123":
            return _sts_error(self, 403, "AccessDenied", "ExternalId does not match")
        if not form.get("RoleSessionName"):
            return _sts_error(self, 400, "ValidationError", "RoleSessionName is required")
        duration = int(form.get("DurationSeconds") or st.expiry)
        key, secret, token, exp = st.issue("ASIASTS" if name == "sts" else "ASIAWEB", name,
                                           duration)
        body = ("<%sResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><%sResult>"
                "<Credentials><AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey>"
                "<SessionToken>%s</SessionToken><Expiration>%s</Expiration></Credentials>"
                "<AssumedRoleUser><Arn>%s/%s</Arn></AssumedRoleUser></%sResult>"
                "</%sResponse>" % (action, action, key, xml_escape(secret), xml_escape(token),
                                   _iso(exp), arn, xml_escape(form["RoleSessionName"]),
                                   action, action))
        self._send(200, body, (), "text/xml")

    def _sts_signature(self, body, record):
        """None, or (code, message) as STS would refuse the signature."""
        st = self.server.state
        auth = self.headers.get("Authorization") or ""
        if not auth.startswith("AWS4-HMAC-SHA256 "):
            return ("MissingAuthenticationToken", "Request is missing Authentication Token")
        parts = dict(p.strip().partition("=")[::2] for p in auth[17:].split(","))
        scope = parts.get("Credential", "").split("/")
        if len(scope) != 5 or scope[3] != "sts" or scope[4] != "aws4_request":
            return ("IncompleteSignature", "bad credential scope")
        record["_access_key_id"] = scope[0]
        record["_region"] = scope[2]
        with st.lock:
            known = st.signers.get(scope[0])
        if not known:
            return ("InvalidClientTokenId", "The security token included in the request is "
                                            "invalid.")
        secret, token = known
        if token and self.headers.get("X-Amz-Security-Token") != token:
            return ("InvalidClientTokenId", "The security token included in the request is "
                                            "invalid.")
        signed = parts.get("SignedHeaders", "").split(";")
        if "host" not in signed or (token and "x-amz-security-token" not in signed):
            return ("IncompleteSignature", "host (and the token) must be signed")
        req = AWSRequest(method="POST", url="http://%s%s" % (self.headers.get("Host"),
                                                             self.path), data=body)
        for n in signed:
            for v in self.headers.get_all(n) or []:
                req.headers[n] = v
        req.context["timestamp"] = self.headers.get("X-Amz-Date", "")
        signer = _ReceivedSigner(Credentials(scope[0], secret, token), scope[2], signed,
                                 self.headers)
        canonical = signer.canonical_request(req)
        expected = signer.signature(signer.string_to_sign(req, canonical), req)
        if expected != parts.get("Signature"):
            return ("SignatureDoesNotMatch", "The request signature we calculated does not "
                                             "match the signature you provided.")
        return None

    def _creds_json(self, prefix, name):
        key, secret, token, exp = self.server.state.issue(prefix, name)
        return {"AccessKeyId": key, "SecretAccessKey": secret, "Token": token,
                "Expiration": _iso(exp)}

    def _imds(self, path):
        st = self.server.state
        if path == "/latest/api/token":
            if self.command != "PUT":
                return self._send(405, "", (), "text/plain")
            if not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                return self._send(400, "", (), "text/plain")
            st.count("imds_token")
            tok = "imds-token-" + uuid.uuid4().hex
            with st.lock:
                st.imds_tokens.add(tok)
            return self._send(200, tok, (), "text/plain")
        with st.lock:
            ok = self.headers.get("X-aws-ec2-metadata-token") in st.imds_tokens
        if not ok:  # IMDSv2 only: no v1 reads
            return self._send(401, "", (), "text/plain")
        base = "/latest/meta-data/iam/security-credentials/"
        if path == "/latest/meta-data/placement/region":
            return self._send(200, "eu-north-1", (), "text/plain")
        if path == base:
            return self._send(200, "evrec-instance-role", (), "text/plain")
        if path == base + "evrec-instance-role":
            if self._fail_if_asked("imds"):
                return None
            body = dict(Code="Success", Type="AWS-HMAC", LastUpdated=_iso(time.time()),
                        **self._creds_json("ASIAIMDS", "imds"))
            return self._send(200, json.dumps(body), (), "text/plain")
        return self._send(404, "", (), "text/plain")

    def _container(self, path):
        st = self.server.state
        if path == "/container/credentials" and \
                self.headers.get("Authorization") != st.container_token:
            return self._json(401, {"message": "Authorization is missing or wrong"})
        if self._fail_if_asked("container"):
            return None
        return self._json(200, dict(RoleArn="arn:aws:iam::123456789012:role/task",
                                    **self._creds_json("ASIACONT", "container")))

    def _sso(self, q):
        st = self.server.state
        if self.headers.get("x-amz-sso_bearer_token") != st.sso_token:
            return self._json(401, {"message": "Session token not found or invalid"},
                              [("x-amzn-ErrorType", "UnauthorizedException")])
        if not q.get("account_id") or not q.get("role_name"):
            return self._json(400, {"message": "account_id and role_name are required"})
        if self._fail_if_asked("sso"):
            return None
        key, secret, token, exp = st.issue("ASIASSO", "sso")
        return self._json(200, {"roleCredentials": {
            "accessKeyId": key, "secretAccessKey": secret, "sessionToken": token,
            "expiration": int(exp * 1000)}})


for _name, _fn in vars(CredentialRoutes).items():
    if callable(_fn) and not _name.startswith("__"):
        setattr(Handler, _name, _fn)


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
    ap.add_argument("--sts-source-key", default="AKIDSTSSOURCE")
    ap.add_argument("--sts-source-secret", default="stsSourceSecret/0123456789")
    ap.add_argument("--web-token", default="web-identity-token-abc")
    ap.add_argument("--container-token", default="container-auth-token")
    ap.add_argument("--sso-token", default="sso-access-token")
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
