#!/usr/bin/env bash
# API fuzzing (TESTING.md): schemathesis over every operation of the OpenAPI
# document of a running `dtenge serve`, every request signed as STB1 by
# .ci/schemathesis_hooks.py with PyPI's http-message-signatures (RFC 9421), an
# implementation independent of dtenge's. Fails on any server error (5xx), any
# answer that does not match its documented schema, status or content type,
# any signed operation that answers an unsigned request with anything but 401,
# or any failure of the interoperability check (.ci/http_signatures_interop.py:
# requests signed by that library accepted, each covered component tampered
# with refused with 401).
#
#   .ci/api-fuzz.sh                          # defaults: 25 examples per operation
#   API_FUZZ_EXAMPLES=200 .ci/api-fuzz.sh    # longer run
#   API_FUZZ_SEED=42 .ci/api-fuzz.sh         # reproduce a run
#
# Installs schemathesis and http-message-signatures (pinned) and cryptography
# from PyPI if missing; builds
# the binary; starts the server on a free port with a fresh data directory and
# stops it on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
SCHEMATHESIS_VERSION="4.32.5"
HTTP_SIGNATURES_VERSION="3.0.0"
EXAMPLES="${API_FUZZ_EXAMPLES:-25}"
SEED="${API_FUZZ_SEED:-$(( (RANDOM << 15) | RANDOM ))}"
PARTICIPANT="STB1"
CHECKS="not_a_server_error,response_schema_conformance,content_type_conformance"
if [ "${API_FUZZ_STRICT:-0}" = 1 ]; then
    CHECKS="$CHECKS,status_code_conformance"
fi
started=$(date +%s)

installed="$(python3 -c 'import schemathesis, cryptography, importlib.metadata as m; print(schemathesis.__version__, m.version("http-message-signatures"))' 2>/dev/null || true)"
if [ "$installed" != "$SCHEMATHESIS_VERSION $HTTP_SIGNATURES_VERSION" ]; then
    echo "installing schemathesis $SCHEMATHESIS_VERSION and http-message-signatures $HTTP_SIGNATURES_VERSION"
    python3 -m pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" \
        "http-message-signatures==$HTTP_SIGNATURES_VERSION" cryptography requests
fi

echo "building dtenge"
cargo build --quiet --locked -p dtenge --bin dtenge
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
BIN="$target_dir/debug/dtenge"

DATA="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
BASE="http://127.0.0.1:$PORT"
"$BIN" serve --data "$DATA" --listen "127.0.0.1:$PORT" >"$DATA/serve.log" 2>&1 &
SERVER=$!
cleanup() {
    if kill -0 "$SERVER" 2>/dev/null; then
        kill "$SERVER" 2>/dev/null || true
        wait "$SERVER" 2>/dev/null || true
    fi
    rm -rf "$DATA"
}
trap cleanup EXIT

echo "waiting for $BASE/api/v1/health"
for _ in $(seq 1 240); do
    if python3 -c "import sys, urllib.request; urllib.request.urlopen('$BASE/api/v1/health', timeout=2)" 2>/dev/null; then
        break
    fi
    if ! kill -0 "$SERVER" 2>/dev/null; then
        echo "dtenge serve exited:" >&2
        cat "$DATA/serve.log" >&2
        exit 1
    fi
    sleep 0.5
done
python3 -c "import urllib.request; urllib.request.urlopen('$BASE/api/v1/health', timeout=2)" || {
    echo "the server did not become healthy; its log:" >&2
    cat "$DATA/serve.log" >&2
    exit 1
}

echo "interoperability: RFC 9421 requests signed by PyPI's http-message-signatures"
python3 "$ROOT/.ci/http_signatures_interop.py" "$BASE" "$DATA/keys/$PARTICIPANT.key" "$PARTICIPANT"

echo "auth: every signed operation refuses an unsigned request with 401"
python3 - "$BASE" <<'PY'
import json, re, sys, urllib.error, urllib.request
base = sys.argv[1]
doc = json.load(urllib.request.urlopen(base + "/api/openapi.json"))
failures, checked = [], 0
for path, item in doc["paths"].items():
    for method in ("get", "post", "put", "patch", "delete"):
        # An operation documented with no security requirement is public (health, the proof of reserves).
        if method not in item or item[method].get("security") == []:
            continue
        url = base + re.sub(r"\{[^}]+\}", "x1", path)
        data = b"{}" if method != "get" else None
        req = urllib.request.Request(url, data=data, method=method.upper(), headers={"content-type": "application/json"})
        try:
            status, body = urllib.request.urlopen(req, timeout=10).status, b""
        except urllib.error.HTTPError as e:
            status, body = e.code, e.read()
        checked += 1
        code = ""
        try:
            code = json.loads(body)["error"]["code"]
        except Exception:
            pass
        if status != 401 or not code:
            failures.append(f"{method.upper()} {path}: {status} {body[:200]!r}")
print(f"  {checked} operations checked")
if failures:
    print("unsigned requests not refused with a JSON 401:\n  " + "\n  ".join(failures), file=sys.stderr)
    sys.exit(1)
PY

echo "schemathesis: $EXAMPLES examples per operation, seed $SEED, signed as $PARTICIPANT"
report="$DATA/report"
set +e
# Run from the data directory: schemathesis keeps a cache (.schemathesis/) in the working directory.
# One worker: with two, hypothesis parses lambda sources from two threads at once and
# CPython 3.11 can fail with "AST constructor recursion depth mismatch" (a tool error, not ours).
cd "$DATA"
SCHEMATHESIS_HOOKS="$ROOT/.ci/schemathesis_hooks.py" \
DTENGE_PARTICIPANT="$PARTICIPANT" \
DTENGE_KEY_FILE="$DATA/keys/$PARTICIPANT.key" \
DTENGE_UNAUTHORIZED_LOG="$DATA/unauthorized.log" \
    schemathesis run "$BASE/api/openapi.json" \
        --checks "$CHECKS" \
        --max-examples "$EXAMPLES" \
        --seed "$SEED" \
        --workers 1 \
        --request-timeout 20 \
        --suppress-health-check all \
        --report junit --report-dir "$report" \
        --no-color
status=$?
set -e
cd "$ROOT"

if ! kill -0 "$SERVER" 2>/dev/null; then
    echo "dtenge serve died during the run; its log:" >&2
    tail -50 "$DATA/serve.log" >&2
    exit 1
fi
if grep -qiE "panicked|thread .* panicked" "$DATA/serve.log"; then
    echo "the server panicked during the run:" >&2
    grep -iE -A5 "panicked" "$DATA/serve.log" >&2
    exit 1
fi
if [ -s "$DATA/unauthorized.log" ]; then
    echo "correctly signed requests were refused with 401 (signer and server disagree):" >&2
    head -20 "$DATA/unauthorized.log" >&2
    status=1
fi
echo "api fuzz took $(( $(date +%s) - started )) s (seed $SEED)"
exit "$status"
