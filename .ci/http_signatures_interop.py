"""Interoperability of the API's request signing with an independent implementation.

Signs requests with PyPI's `http-message-signatures` (RFC 9421, Ed25519, with
its own RFC 9530 Content-Digest) — not with any dtenge code — and sends them to
a running `dtenge serve`:

* correctly signed requests (a read, a transfer with an Idempotency-Key) are
  accepted;
* each covered component changed after signing (method, target URI — path,
  query and host —, body against its digest, the digest itself, the
  Idempotency-Key, every signature parameter, the signature bytes) is refused
  with 401 and the error code that names it;
* the same signed request sent twice is refused the second time (nonce);
* nothing a refused request asked for happened (the payer's balance).

Usage: python3 .ci/http_signatures_interop.py BASE_URL KEY_FILE [PARTICIPANT]
(KEY_FILE: the participant's Ed25519 seed in hex, DATA/keys/STB1.key).
Exit 0 when every check passed; prints one line per check.
"""

import base64
import copy
import datetime
import hashlib
import json
import secrets
import sys

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from http_message_signatures import HTTPMessageSigner, HTTPSignatureKeyResolver, algorithms

BASE = sys.argv[1].rstrip("/")
with open(sys.argv[2], encoding="ascii") as f:
    KEY = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(f.read().strip()))
PARTICIPANT = sys.argv[3] if len(sys.argv) > 3 else "STB1"
TAG = "fapi-2-request"


class Keys(HTTPSignatureKeyResolver):
    def resolve_private_key(self, key_id):
        return KEY

    def resolve_public_key(self, key_id):
        return KEY.public_key()


SIGNER = HTTPMessageSigner(signature_algorithm=algorithms.ED25519, key_resolver=Keys())
SESSION = requests.Session()
failures = []


def prepared(method, path, body=b"", idempotency_key=None):
    """A request signed by the independent library, exactly as it will be sent."""
    headers = {"content-type": "application/json"} if body else {}
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    request = requests.Request(method, BASE + path, data=body or None, headers=headers).prepare()
    covered = ["@method", "@target-uri"] + (["idempotency-key"] if idempotency_key is not None else [])
    SIGNER.sign(
        request,
        key_id=PARTICIPANT,
        created=datetime.datetime.now(datetime.timezone.utc),
        nonce=secrets.token_hex(16),
        label="interop",
        tag=TAG,
        covered_component_ids=covered,
        body=body,
    )
    return request


def send(request):
    response = SESSION.send(request, timeout=20)
    try:
        payload = response.json()
    except ValueError:
        payload = {}
    return response.status_code, payload


def check(name, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else f": {detail}"))
    if not ok:
        failures.append(name)


def refused(name, request, code=None):
    status, payload = send(request)
    got = (payload.get("error") or {}).get("code")
    check(f"{name} -> 401" + (f" {code}" if code else ""), status == 401 and (code is None or got == code), f"{status} {payload}")


# ---- accepted ----------------------------------------------------------------------
status, page = send(prepared("GET", "/api/v1/accounts?per_page=200"))
check("a signed GET is accepted", status == 200, f"{status} {page}")
accounts = [a for a in page.get("items", []) if a.get("custody") == "custodial"]
balances = {}
for a in accounts:
    s, b = send(prepared("GET", f"/api/v1/accounts/{a['id']}/balance"))
    balances[a["id"]] = b.get("standard_tiyn", 0) if s == 200 else 0
payer = next((a for a in accounts if balances[a["id"]] >= 10_000), None)
payee = next((a for a in accounts if payer and a["id"] != payer["id"]), None)
check("the demo set has a funded DA and another to pay", payer is not None and payee is not None, str(balances))
if payer is None or payee is None:
    sys.exit(1)

body = json.dumps({"from": payer["id"], "to": [{"address": payee["address"], "amount_tiyn": 100}], "memo": "interop"}).encode()
key = "interop-" + secrets.token_hex(8)
transfer = prepared("POST", "/api/v1/transfers", body, idempotency_key=key)
status, outcome = send(copy.deepcopy(transfer))
check("a signed transfer with an Idempotency-Key is accepted", status == 200 and outcome.get("status", {}).get("status") == "success", f"{status} {outcome}")

# ---- refused: each covered component changed ---------------------------------------------
def balance():
    return send(prepared("GET", f"/api/v1/accounts/{payer['id']}/balance"))[1].get("standard_tiyn")


before = balance()

r = prepared("GET", "/api/v1/accounts?per_page=200")
r.method = "POST"
refused("@method changed (GET signed, POST sent)", r, "bad_signature")

r = prepared("GET", "/api/v1/accounts?per_page=200")
r.url = BASE + "/api/v1/accounts?per_page=100"
refused("@target-uri query changed", r, "bad_signature")

r = prepared("GET", f"/api/v1/accounts/{payer['id']}")
r.url = BASE + f"/api/v1/accounts/{payee['id']}"
refused("@target-uri path changed", r, "bad_signature")

r = prepared("GET", "/api/v1/accounts?per_page=200")
r.headers["Host"] = "attacker.example:443"
refused("@target-uri host changed", r, "bad_signature")

other = json.dumps({"from": payer["id"], "to": [{"address": payee["address"], "amount_tiyn": 9_000}], "memo": "interop"}).encode()
r = prepared("POST", "/api/v1/transfers", body, idempotency_key="interop-" + secrets.token_hex(8))
r.body = other
r.headers["Content-Length"] = str(len(other))
refused("body changed (content-digest no longer matches)", r, "content_digest_mismatch")

r = prepared("POST", "/api/v1/transfers", body, idempotency_key="interop-" + secrets.token_hex(8))
r.body = other
r.headers["Content-Length"] = str(len(other))
r.headers["Content-Digest"] = "sha-256=:" + base64.b64encode(hashlib.sha256(other).digest()).decode() + ":"
refused("body and content-digest both changed", r, "bad_signature")

r = prepared("POST", "/api/v1/transfers", body, idempotency_key="interop-" + secrets.token_hex(8))
r.headers["Idempotency-Key"] = "interop-" + secrets.token_hex(8)
refused("idempotency-key changed", r, "bad_signature")

r = prepared("POST", "/api/v1/transfers", body)
r.headers["Idempotency-Key"] = "interop-" + secrets.token_hex(8)
refused("idempotency-key added but not covered", r, "component_not_covered")

for param, old, new in [("nonce", 'nonce="', 'nonce="x'), ("keyid", f'keyid="{PARTICIPANT}"', 'keyid="STB2"'), ("created", ";created=", ";created=1")]:
    r = prepared("GET", "/api/v1/accounts?per_page=200")
    r.headers["Signature-Input"] = r.headers["Signature-Input"].replace(old, new, 1)
    refused(f"signature parameter {param} changed", r)

r = prepared("GET", "/api/v1/accounts?per_page=200")
value = r.headers["Signature"]
label, sig = value.split("=", 1)
raw = bytearray(base64.b64decode(sig.strip(":")))
raw[0] ^= 1
r.headers["Signature"] = f"{label}=:{base64.b64encode(bytes(raw)).decode()}:"
refused("signature bytes changed", r, "bad_signature")

r = prepared("GET", "/api/v1/accounts?per_page=200")
r.headers["Signature-Input"] = r.headers["Signature-Input"].replace(f';tag="{TAG}"', "")
refused("tag removed", r, "signature_tag")

r = prepared("GET", "/api/v1/accounts?per_page=200")
status, _ = send(copy.deepcopy(r))
check("a fresh signed request is accepted once", status == 200, str(status))
refused("the same signed request replayed", r, "replayed_nonce")

status, again = send(prepared("POST", "/api/v1/transfers", body, idempotency_key=key))
check("the transfer signed again with its key gets the same answer (not a second payment)", status == 200 and again == outcome, f"{status} {again}")
after = balance()
check("refused requests changed nothing (payer's balance)", before == after, f"{before} -> {after}")

print(f"{len(failures)} failed")
sys.exit(1 if failures else 0)
