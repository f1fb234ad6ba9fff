#!/usr/bin/env bash
# Builds teal and runs the whole test suite, installing what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh nginx-light wrk python3-websockets openssl chromium openssh-server gnupg gpgv postgresql python3-psycopg
swift build --build-tests
# One test at a time: the suites start real routers, agents, colors, servers and a browser, and on two
# cores running them all at once turns their timeouts into noise.
swift test --skip-build --no-parallel "$@"
