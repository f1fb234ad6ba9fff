#!/usr/bin/env bash
# Installs teal on this Debian machine as a systemd service. Run from the source checkout as root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
# Link-time optimisation makes the router about 5% cheaper per request (Benchmarks/RESULTS.md); a toolchain
# that cannot do it still gets a plain release build.
swift build -c release --experimental-lto-mode=full --product teal \
    || swift build -c release --product teal
install -m 0755 "$(swift build -c release --show-bin-path)/teal" /usr/local/bin/teal
mkdir -p /usr/local/share/teal
rm -rf /usr/local/share/teal/manifests
cp -r manifests /usr/local/share/teal/manifests
cp README.md /usr/local/share/teal/README.md
id teal >/dev/null 2>&1 || useradd --system --home-dir /var/lib/teal --shell /usr/sbin/nologin teal
install -d -o teal -g teal -m 0750 /var/lib/teal /srv/teal
install -d -m 0755 /etc/teal
[ -f /etc/teal/teal.env ] || install -m 0640 -g teal deploy/teal.env.example /etc/teal/teal.env
install -m 0644 deploy/teal.service /etc/systemd/system/teal.service
systemctl daemon-reload
cat <<EOT
Installed. Next:
  1. put the desired-state repository at the path TEAL_REPO names in /etc/teal/teal.env
     (for example: git clone --bare <your repo> /srv/teal/desired.git && chown -R teal: /srv/teal)
  2. systemctl enable --now teal
  3. curl -s 127.0.0.1:9400/status ; journalctl -u teal -f
EOT
