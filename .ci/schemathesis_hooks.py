"""Schemathesis hooks for the dtenge API: sign every request as one participant.

Loaded by .ci/api-fuzz.sh through SCHEMATHESIS_HOOKS. The participant is
DTENGE_PARTICIPANT (default STB1); its Ed25519 seed (hex) is read from
DTENGE_KEY_FILE (DATA/keys/<ID>.key).

The signature is the one `dtenge_api::auth` checks, computed over the request
exactly as it goes on the wire (requests' PreparedRequest, after schemathesis
has serialized the body and query):

    digest = SHA-256( len("dtenge/api/v1") as one byte || "dtenge/api/v1" ||
                      METHOD "\n" path?query "\n" hex(SHA-256(body)) "\n" timestamp "\n" nonce )
    x-dtenge-signature = hex(Ed25519_sign(seed, digest))

Signing happens in requests.Session.send, which every schemathesis call goes
through, so generated headers can never leave a request unsigned or signed
over other bytes than those sent.
"""

import hashlib
import os
import secrets
import time

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

DOMAIN = b"dtenge/api/v1"
PARTICIPANT = os.environ.get("DTENGE_PARTICIPANT", "STB1")
_KEY_FILE = os.environ["DTENGE_KEY_FILE"]
with open(_KEY_FILE, encoding="ascii") as f:
    _KEY = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(f.read().strip()))

SIGNED_HEADERS = ("x-dtenge-participant", "x-dtenge-timestamp", "x-dtenge-nonce", "x-dtenge-signature")


def signing_digest(method: str, path_and_query: str, body: bytes, timestamp: int, nonce: str) -> bytes:
    body_hash = hashlib.sha256(body).hexdigest()
    text = f"{method}\n{path_and_query}\n{body_hash}\n{timestamp}\n{nonce}".encode()
    return hashlib.sha256(bytes([len(DOMAIN)]) + DOMAIN + text).digest()


def sign(prepared: requests.PreparedRequest) -> None:
    body = prepared.body or b""
    if isinstance(body, str):
        body = body.encode("utf-8")
        prepared.body = body
    if not isinstance(body, (bytes, bytearray)):
        raise TypeError(f"cannot sign a streamed body of type {type(body).__name__}")
    timestamp = int(time.time() * 1000)
    nonce = secrets.token_hex(16)
    digest = signing_digest(prepared.method.upper(), prepared.path_url, bytes(body), timestamp, nonce)
    for name in list(prepared.headers):
        if name.lower() in SIGNED_HEADERS:
            del prepared.headers[name]
    prepared.headers["x-dtenge-participant"] = PARTICIPANT
    prepared.headers["x-dtenge-timestamp"] = str(timestamp)
    prepared.headers["x-dtenge-nonce"] = nonce
    prepared.headers["x-dtenge-signature"] = _KEY.sign(digest).hex()


# Every request here is correctly signed, so a 401 means the server and this
# signer disagree (a path or body the server sees differently): each one is
# written to DTENGE_UNAUTHORIZED_LOG for the script to fail on.
_UNAUTHORIZED_LOG = os.environ.get("DTENGE_UNAUTHORIZED_LOG")
_original_send = requests.Session.send


def _signed_send(self, request, **kwargs):
    sign(request)
    response = _original_send(self, request, **kwargs)
    if response.status_code == 401 and _UNAUTHORIZED_LOG:
        body = request.body if isinstance(request.body, (bytes, bytearray)) else b""
        with open(_UNAUTHORIZED_LOG, "a", encoding="utf-8") as log:
            log.write(f"{request.method} {request.path_url} body={bytes(body)[:300]!r} -> 401 {response.content[:300]!r}\n")
    return response


requests.Session.send = _signed_send
