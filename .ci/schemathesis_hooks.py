"""Schemathesis hooks for the dtenge API: sign every request as one participant.

Loaded by .ci/api-fuzz.sh through SCHEMATHESIS_HOOKS. The participant is
DTENGE_PARTICIPANT (default STB1); its Ed25519 seed (hex) is read from
DTENGE_KEY_FILE (DATA/keys/<ID>.key).

Requests are signed the standard way the API requires — RFC 9421 HTTP
Message Signatures, Ed25519, an RFC 9530 Content-Digest, FAPI 2.0's
`tag="fapi-2-request"` — by PyPI's `http-message-signatures`, an
implementation independent of dtenge's own (docs/api.md). Signing happens in
requests.Session.send, which every schemathesis call goes through, over the
request exactly as it goes on the wire, so generated headers can never leave
a request unsigned or signed over other bytes than those sent.
"""

import datetime
import os
import secrets

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from http_message_signatures import HTTPMessageSigner, HTTPSignatureKeyResolver, algorithms

PARTICIPANT = os.environ.get("DTENGE_PARTICIPANT", "STB1")
_KEY_FILE = os.environ["DTENGE_KEY_FILE"]
with open(_KEY_FILE, encoding="ascii") as f:
    _KEY = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(f.read().strip()))

SIGNED_HEADERS = ("signature", "signature-input", "content-digest", "idempotency-key")


class _Keys(HTTPSignatureKeyResolver):
    def resolve_private_key(self, key_id):
        return _KEY

    def resolve_public_key(self, key_id):
        return _KEY.public_key()


_SIGNER = HTTPMessageSigner(signature_algorithm=algorithms.ED25519, key_resolver=_Keys())


def sign(prepared: requests.PreparedRequest) -> None:
    body = prepared.body or b""
    if isinstance(body, str):
        body = body.encode("utf-8")
        prepared.body = body
    if not isinstance(body, (bytes, bytearray)):
        raise TypeError(f"cannot sign a streamed body of type {type(body).__name__}")
    for name in list(prepared.headers):
        if name.lower() in SIGNED_HEADERS:
            del prepared.headers[name]
    _SIGNER.sign(
        prepared,
        key_id=PARTICIPANT,
        created=datetime.datetime.now(datetime.timezone.utc),
        nonce=secrets.token_hex(16),
        label="sig",
        tag="fapi-2-request",
        covered_component_ids=("@method", "@target-uri"),
        body=bytes(body),
    )


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
