#!/usr/bin/env bash
# Installs teal on this Debian machine.
#
#   deploy/install.sh                  as root: /usr/local, a `teal` system user, the systemd unit
#   deploy/install.sh --prefix DIR     as anyone: DIR/bin/teal and DIR/share/teal only (no user, no systemd)
#   ... --binary PATH                  install an already built teal instead of building one
#
# It never builds as root inside the source checkout (that would leave root-owned files there): as root it builds
# as the user who ran sudo, or, without one, in a scratch copy of the sources that is removed afterwards.
set -euo pipefail
usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
prefix=""
binary=""
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="${2:?--prefix needs a directory}"; shift 2 ;;
    --prefix=*) prefix="${1#--prefix=}"; shift ;;
    --binary) binary="${2:?--binary needs a path}"; shift 2 ;;
    --binary=*) binary="${1#--binary=}"; shift ;;
    -h|--help) usage 0 ;;
    *) echo "unknown option: $1" >&2; usage 2 ;;
  esac
done
checkout="$(cd "$(dirname "$0")/.." && pwd)"
system=true
if [ -n "$prefix" ]; then
  system=false
  mkdir -p "$prefix"
  prefix="$(cd "$prefix" && pwd)"
elif [ "$(id -u)" -ne 0 ]; then
  echo "installing as a system service needs root; without root use --prefix DIR (for example --prefix \$HOME/.local)" >&2
  exit 1
else
  prefix=/usr/local
fi

# Link-time optimisation makes the router about 5% cheaper per request (Benchmarks/RESULTS.md); a toolchain
# that cannot do it still gets a plain release build.
build='swift build -c release --experimental-lto-mode=full --product teal || swift build -c release --product teal
       echo "$(swift build -c release --show-bin-path)/teal"'
scratch=""
cleanup() { if [ -n "$scratch" ]; then rm -rf "$scratch"; fi; }
trap cleanup EXIT
if [ -z "$binary" ]; then
  bash "$checkout/scripts/install-deps.sh"
  if [ "$(id -u)" -ne 0 ]; then
    binary="$(cd "$checkout" && bash -c "$build" | tail -n 1)"
  elif [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
    echo "building as $SUDO_USER (not root) in $checkout"
    binary="$(cd "$checkout" && runuser -u "$SUDO_USER" -- bash -c "$build" | tail -n 1)"
  else
    scratch="$(mktemp -d /var/tmp/teal-build.XXXXXX)"
    echo "building in a scratch copy ($scratch), not in the checkout"
    tar -C "$checkout" --exclude='./.build*' --exclude=./.git --exclude=./.swiftpm -cf - . | tar -C "$scratch" -xf -
    binary="$(cd "$scratch" && bash -c "$build" | tail -n 1)"
  fi
fi
[ -x "$binary" ] || { echo "no teal binary at $binary" >&2; exit 1; }

install -d "$prefix/bin" "$prefix/share/teal"
install -m 0755 "$binary" "$prefix/bin/teal"
rm -rf "$prefix/share/teal/manifests"
cp -r "$checkout/manifests" "$prefix/share/teal/manifests"
cp "$checkout/README.md" "$prefix/share/teal/README.md"
install -m 0644 "$checkout/deploy/teal.service" "$prefix/share/teal/teal.service"
install -m 0644 "$checkout/deploy/teal.env.example" "$prefix/share/teal/teal.env.example"
install -m 0644 "$checkout/deploy/teal.yaml.example" "$prefix/share/teal/teal.yaml.example"

if ! $system; then
  cat <<EOT
Installed $("$prefix/bin/teal" --version | head -n 1) into $prefix (no system user, no systemd unit). Next:
  1. export PATH="$prefix/bin:\$PATH"
  2. teal init ~/desired && teal watch --repo ~/desired --data-dir ~/.teal
  3. open http://127.0.0.1:9400/ (the status page); teal status
EOT
  exit 0
fi

id teal >/dev/null 2>&1 || useradd --system --home-dir /var/lib/teal --shell /usr/sbin/nologin teal
install -d -o teal -g teal -m 0750 /var/lib/teal /srv/teal
install -d -m 0755 /etc/teal
[ -f /etc/teal/teal.env ] || install -m 0640 -g teal "$checkout/deploy/teal.env.example" /etc/teal/teal.env
if [ ! -f /etc/teal/teal.yaml ]; then
  install -m 0640 -g teal "$checkout/deploy/teal.yaml.example" /etc/teal/teal.yaml
  # An environment file from before the configuration file: its settings move into teal.yaml, so the new unit
  # runs the same agent (the file would otherwise win over TEAL_REPO and the others).
  if grep -qE '^TEAL_(REPO|BRANCH|DATA_DIR|ADMIN)=.' /etc/teal/teal.env; then
    for pair in repo:TEAL_REPO branch:TEAL_BRANCH data-dir:TEAL_DATA_DIR admin:TEAL_ADMIN; do
      value="$(sed -n "s/^${pair#*:}=//p" /etc/teal/teal.env | tail -n 1)"
      # Written single-quoted for YAML ('' for a quote; [::1]:9400 stays a string) and escaped for sed.
      quoted="'$(printf '%s' "$value" | sed "s/'/''/g")'"
      quoted="$(printf '%s' "$quoted" | sed -e 's/[\\&|]/\\&/g')"
      [ -n "$value" ] && sed -i "s|^${pair%%:*}: .*|${pair%%:*}: $quoted|" /etc/teal/teal.yaml
    done
    sed -i -E 's/^(TEAL_(REPO|BRANCH|DATA_DIR|ADMIN)=)/# moved to \/etc\/teal\/teal.yaml: \1/' /etc/teal/teal.env
  fi
fi
install -m 0644 "$checkout/deploy/teal.service" /etc/systemd/system/teal.service
systemctl daemon-reload
cat <<EOT
Installed $("$prefix/bin/teal" --version | head -n 1). Next:
  1. put the desired-state repository at the path repo: names in /etc/teal/teal.yaml (or write its URL there)
     (for example: git clone --bare <your repo> /srv/teal/desired.git && chown -R teal: /srv/teal)
  2. systemctl enable --now teal
  3. curl -s 127.0.0.1:9400/status ; journalctl -u teal -f ; the status page: ssh -L 9400:127.0.0.1:9400 <host>, then http://127.0.0.1:9400/
EOT
