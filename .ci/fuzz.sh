#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for FUZZ_SECONDS seconds each (default
# 30) and fails if any of them finds a crash, a panic, a leak or a timeout.
# Targets (one per family of decoders that read outside input): transactions,
# envelopes, service message bodies, API request bodies and signed-request
# headers, CBS files, platform.json. Prints executions and exec/s per target.
#
#   FUZZ_SECONDS=300 .ci/fuzz.sh                 # longer run
#   FUZZ_TOTAL_SECONDS=120 .ci/fuzz.sh           # a total budget, split evenly (at least 5 s each)
#   FUZZ_TARGETS="decode_transaction" .ci/fuzz.sh
#   FUZZ_CORPUS_DIR=/cache/fuzz .ci/fuzz.sh      # keep what the fuzzer learns
#
# The checked-in seed corpus (fuzz/corpus/<target>/) is only read; new inputs
# go to a working directory, so a run leaves the tree clean. Crash inputs are
# saved in fuzz/artifacts/<target>/ and printed as hex.
#
# cargo-fuzz needs nightly-only sanitizer flags; on a stable toolchain we set
# RUSTC_BOOTSTRAP=1 for the fuzz build only. If the AddressSanitizer build
# still fails, the targets are built without a sanitizer (`-s none`): Rust
# code is memory-safe, so panics and aborts are what we are looking for.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"

seconds="${FUZZ_SECONDS:-30}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
    echo "FUZZ_SECONDS must be a positive number of seconds, got '$seconds'" >&2
    exit 2
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1

targets="${FUZZ_TARGETS:-$(cargo fuzz list)}"
if [ -z "$targets" ]; then
    echo "no fuzz targets found in fuzz/" >&2
    exit 1
fi

if [ -n "${FUZZ_TOTAL_SECONDS:-}" ]; then
    count=$(wc -w <<<"$targets")
    seconds=$(( FUZZ_TOTAL_SECONDS / count ))
    if [ "$seconds" -lt 5 ]; then seconds=5; fi
fi

work="${FUZZ_CORPUS_DIR:-}"
if [ -z "$work" ]; then
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
fi

# One build, shared by every target: address sanitizer if it builds here.
sanitizer=address
if ! cargo fuzz build -s address; then
    echo "AddressSanitizer build failed; fuzzing without a sanitizer" >&2
    sanitizer=none
    cargo fuzz build -s none
fi

failed=()
summary=()
for target in $targets; do
    echo "== fuzz $target for ${seconds}s (sanitizer: $sanitizer) =="
    mkdir -p "$work/$target" "corpus/$target"
    args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
    if [ -f "$target.dict" ]; then
        args+=(-dict="$target.dict")
    fi
    log="$work/$target.log"
    status=0
    cargo fuzz run -s "$sanitizer" "$target" "$work/$target" "corpus/$target" -- "${args[@]}" 2>&1 | tee "$log" || status=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(grep -o 'exec/s: [0-9]*' "$log" | tail -1 | sed 's/exec\/s: //')
    summary+=("$(printf '%-24s %12s execs %8s exec/s' "$target" "${execs:-?}" "${rate:-?}")")
    if [ "$status" -ne 0 ]; then
        failed+=("$target")
        for artifact in artifacts/"$target"/*; do
            [ -f "$artifact" ] || continue
            echo "-- $artifact:"
            od -An -tx1 -v "$artifact" | head -c 4096
        done
    fi
done

echo "== fuzz summary (${seconds}s per target) =="
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzzing found failures in: ${failed[*]}" >&2
    echo "reproduce with: cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run <target> artifacts/<target>/<file>" >&2
    exit 1
fi
echo "fuzzing: no failures in ${seconds}s per target"
