#!/usr/bin/env bash
# The demo: builds teal, makes a scratch desired-state repository from manifests/, starts the
# agent with the example app, and prints what to try next. The agent keeps running afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
swift build --product teal
teal="$PWD/.build/debug/teal"
port="${TEAL_DEMO_PORT:-8080}"
admin="${TEAL_DEMO_ADMIN:-9400}"
demo="${TEAL_DEMO_DIR:-$(mktemp -d /tmp/teal-demo.XXXXXX)}"
repo="$demo/desired"
data="$demo/data"

"$teal" init "$repo" >/dev/null
if [ "$port" != 8080 ]; then
  sed -i "s/127.0.0.1:8080/127.0.0.1:$port/" "$repo/apps/shop/traffic.yaml"
  git -C "$repo" -c user.name=teal -c user.email=teal@localhost commit -qam "Serve the shop on port $port"
fi
"$teal" validate --repo "$repo"
nohup "$teal" watch --repo "$repo" --data-dir "$data" --admin "127.0.0.1:$admin" >"$demo/agent.log" 2>&1 &
echo $! >"$demo/agent.pid"
echo "agent started (pid $(cat "$demo/agent.pid")), log in $demo/agent.log"
for _ in $(seq 1 120); do
  curl -fs "http://127.0.0.1:$port/" >/dev/null 2>&1 && break
  sleep 0.5
done
echo "the shop answers on http://127.0.0.1:$port/:"
curl -fsS "http://127.0.0.1:$port/" && echo
curl -fsS -XPOST "http://127.0.0.1:$port/users" -d '{"name": "Ada Lovelace"}' >/dev/null
cat <<EOT

Try it (the agent notices a commit within a second):
  cd $repo
  # 1. deploy release 2.0.0 as green, with the split-name migration (traffic stays on blue):
  cat >> apps/shop/environment.yaml <<'YAML'
  green:
    release: "2.0.0"
    command: ["python3", "app.py"]
    schema: 0002_split_name
YAML
  git commit -qam "Deploy 2.0.0 as green"
  # 2. switch traffic, write through green, switch back, and read the row through blue:
  sed -i 's/live: blue/live: green/' apps/shop/traffic.yaml && git commit -qam "Switch to green"
  curl -s -XPOST 127.0.0.1:$port/users -d '{"first_name": "Grace", "last_name": "Hopper"}'
  git revert --no-edit HEAD && sleep 1 && curl -s 127.0.0.1:$port/users
  # 3. revert the deploy (green stops, the migration rolls back, no row is lost), then audit:
  git revert --no-edit HEAD~2 && sleep 3 && git log --notes=teal --format='%h %s%n%N'
  $teal status --data-dir $data
  $teal history --repo $repo
  curl -s 127.0.0.1:$admin/metrics | grep ^teal_
When done: kill \$(cat $demo/agent.pid); $teal down --data-dir $data
EOT
