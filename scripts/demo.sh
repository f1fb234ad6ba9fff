#!/usr/bin/env bash
# Builds teal, makes a scratch desired-state repository from manifests/ and shows its plan.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
swift build
demo="${TEAL_DEMO_DIR:-$(mktemp -d /tmp/teal-demo.XXXXXX)}"
teal=.build/debug/teal
$teal init "$demo/desired"
$teal validate --repo "$demo/desired"
$teal plan --repo "$demo/desired" --data-dir "$demo/data"
cat <<EOT

The desired-state repository is $demo/desired. Try:
  git -C $demo/desired log --oneline
  $teal history --repo $demo/desired
  edit $demo/desired/apps/shop/environment.yaml, commit, and run:
  $teal validate --repo $demo/desired && $teal plan --repo $demo/desired --data-dir $demo/data
EOT
