#!/usr/bin/env bash
# The README's test command: installs what the tests need when it is missing
# (Debian's chromium and chromium-driver, for the web interface's browser
# test), then runs the whole workspace suite. `.ci/run` calls this same script.
# Extra arguments go to `cargo test` (e.g. `bash .ci/test.sh -p dtenge-net`).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
# One build of each crate: incremental caches would double the target directory.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  echo "chromium and chromedriver: installed"
else
  echo "installing chromium and chromium-driver (Debian packages) for the browser test"
  packages=(chromium chromium-driver)
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}"
  elif command -v sudo >/dev/null; then
    sudo apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}"
  else
    echo "error: chromium and chromedriver are missing and this user can neither apt-get nor sudo;" >&2
    echo "       install them as root: apt-get install -y chromium chromium-driver" >&2
    exit 1
  fi
fi

if [ "$#" -eq 0 ]; then
  set -- --workspace
fi
exec cargo test --locked "$@"
