#!/bin/sh
# Install the Loa receiver agent on Raspberry Pi OS (Debian bookworm or newer), as root:
#
#   sudo sh install-receiver.sh LOA_PACKAGE CONFIG_JSON   # a first install
#   sudo sh install-receiver.sh LOA_PACKAGE               # an upgrade: keeps the installed config
#
# LOA_PACKAGE: a wheel or source folder of Loa (e.g. loa-0.1.0-py3-none-any.whl, built with
#   `python3 -m build` on the server), or "loa" to install from the package index.
# CONFIG_JSON: this receiver's config file, downloaded from the admin page (Quản trị → Cụm loa)
#   or written by `loa device add` on the server. It holds the device's broker password. Given on
#   an upgrade, it replaces the installed one.
#
# Installs mpg123 (playback), alsa-utils (volume), chrony (clock sync: receivers start together
# only if their clocks agree), creates the system user `loa`, a virtualenv in /opt/loa, the
# config in /etc/loa (readable by root and loa only) and the systemd unit, then starts it and
# runs `loa doctor`. Safe to run again (an upgrade keeps the config unless one is given). Where
# no systemd runs (a chroot, an image being built) the unit is enabled for the next boot.
set -eu

package="${1:?usage: install-receiver.sh LOA_PACKAGE [CONFIG_JSON]}"
config="${2:-}"
here="$(cd "$(dirname "$0")" && pwd)"

if [ "$(id -u)" -ne 0 ]; then
  echo "install-receiver.sh: run as root (sudo)" >&2
  exit 2
fi
if [ -n "$config" ] && [ ! -r "$config" ]; then
  echo "install-receiver.sh: cannot read the config file $config" >&2
  exit 2
fi
if [ -z "$config" ] && [ ! -f /etc/loa/receiver.json ]; then
  echo "install-receiver.sh: a first install needs this receiver's config file (CONFIG_JSON)" >&2
  exit 2
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  python3 python3-venv mpg123 alsa-utils chrony ca-certificates

getent group gpio >/dev/null || groupadd --system gpio
id loa >/dev/null 2>&1 || useradd --system --home-dir /var/lib/loa --shell /usr/sbin/nologin \
  --groups audio,gpio loa

install -d -m 0755 /opt/loa
install -d -m 0750 -o loa -g loa /var/lib/loa
install -d -m 0750 -o root -g loa /etc/loa

[ -x /opt/loa/venv/bin/python ] || python3 -m venv /opt/loa/venv
pip_install() { /opt/loa/venv/bin/python -m pip install --quiet --no-cache-dir "$@"; }
pip_install --upgrade pip
pip_install --upgrade "$package"
# A rebuilt wheel may keep its version number: put its code in place anyway (its dependencies
# were settled by the line above).
pip_install --force-reinstall --no-deps "$package"

# The receiver keeps its state where the unit lets it write; the rest of the config is as given.
# Written private (umask 077) since it holds the broker password; then made readable by loa.
if [ -n "$config" ]; then
  (umask 077 && /opt/loa/venv/bin/python - "$config" /etc/loa/receiver.json) <<'PY'
import json, sys
source, target = sys.argv[1], sys.argv[2]
with open(source, encoding="utf-8") as f:
    config = json.load(f)
config["data_dir"] = "/var/lib/loa"
# mpg123 in remote-control mode, ready before each start (devices.players.Mpg123Player); a
# config that already names a command player keeps it.
pi_player = {"kind": "mpg123", "remote_argv": ["mpg123", "-R", "-o", "alsa"]}
config.setdefault("player", pi_player)
if config["player"].get("kind") == "file":  # a demo config: play for real on the Pi
    config["player"] = pi_player
with open(target + ".tmp", "w", encoding="utf-8") as f:
    json.dump(config, f, ensure_ascii=False, indent=2)
PY
  mv /etc/loa/receiver.json.tmp /etc/loa/receiver.json
fi
chown root:loa /etc/loa/receiver.json
chmod 0640 /etc/loa/receiver.json

install -m 0644 "$here/systemd/loa-receiver.service" /etc/systemd/system/loa-receiver.service
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable --now chrony
  systemctl enable loa-receiver.service
  systemctl restart loa-receiver.service  # an upgrade must run the new code
else
  # no running systemd (a chroot, an image being built): enable for the next boot
  wants=/etc/systemd/system/multi-user.target.wants
  systemctl enable chrony loa-receiver.service 2>/dev/null || {
    install -d "$wants"
    ln -sf /etc/systemd/system/loa-receiver.service "$wants/loa-receiver.service"
  }
fi

echo "installed; checking this receiver:"
runuser -u loa -- /opt/loa/venv/bin/loa doctor --config /etc/loa/receiver.json || true
