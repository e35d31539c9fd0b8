#!/usr/bin/env bash
# Runs inside the image over Packer's SSH: installs the staged release under /opt/moat, the
# system user, the systemd units, the firewall and the console screen; then removes the
# build's access (its SSH key, root's password) and anything per-machine, so each appliance
# makes its own at first boot (machine id, SSH host keys, TLS key, bounce and DKIM keys).
set -euo pipefail
files=/tmp/files

tar -xzf /tmp/moat.tar.gz -C /
chown -R root:root /opt/moat /etc/moat
shipped=$(readlink /opt/moat/current)
id moat >/dev/null 2>&1 || useradd --system --home-dir /var/lib/moat --shell /usr/sbin/nologin moat
install -d -o moat -g moat -m 0750 /var/lib/moat
install -d -m 0755 /etc/moat /etc/issue.d
install -m 0644 "$files/moat.env" /etc/moat/moat.env
install -m 0644 "$files"/systemd/* /etc/systemd/system/
install -m 0755 "$files/moat-console-issue" /usr/local/sbin/moat-console-issue
install -m 0755 "$files/moat-growfs" /usr/local/sbin/moat-growfs
# Where the web service (the moat user) leaves requests for the root units, made at each boot.
cat > /etc/tmpfiles.d/moat.conf <<'TMPFILES'
d /var/lib/moat 0750 moat moat -
d /var/lib/moat/system 0750 moat moat -
d /var/lib/moat/updates 0750 moat moat -
TMPFILES
install -m 0755 "$files/nftables.conf" /etc/nftables.conf
cat > /usr/local/bin/moat <<'SH'
#!/bin/sh
# The appliance's command line with the appliance's settings: as the moat user, except what
# changes the system itself (updates, host settings), which stays root.
set -a
. /etc/moat/moat.env
[ -r /etc/moat/antivirus.env ] && . /etc/moat/antivirus.env
set +a
node=/opt/moat/current/node/bin/node
cli=/opt/moat/current/bin/moat
if [ "$(id -u)" = 0 ]; then
  case "${1:-}" in
    update|system) exec "$node" "$cli" "$@" ;;
    *) exec runuser -u moat -- "$node" "$cli" "$@" ;;
  esac
fi
exec "$node" "$cli" "$@"
SH
chmod 0755 /usr/local/bin/moat

# Logs go to the journal; freshclam fetches signatures whenever the appliance is online.
systemctl daemon-reload
systemctl enable moat-smtp.service moat-web.service moat-jobs.service moat-agent.service moat-console.service moat-antivirus.path \
  moat-system.path moat-update.path moat-restart.path moat-growfs.service nftables.service clamav-freshclam.service
# SSH host keys are made at first boot, not shared by every appliance from this image.
cat > /etc/systemd/system/ssh-keygen-firstboot.service <<'UNIT'
[Unit]
Description=Generate this appliance's SSH host keys
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
UNIT
systemctl enable ssh-keygen-firstboot.service

# Smoke test under the image's own Node before sealing.
runuser -u moat -- env MOAT_DATA_DIR=/tmp/moat-smoke /opt/moat/current/node/bin/node /opt/moat/current/bin/moat org list >/dev/null
rm -rf /tmp/moat-smoke

# The update path, for real, in this very system: the services run under systemd, `moat
# update` (as root, through the wrapper) switches them to a re-labelled copy of this release
# and checks its health; then everything goes back to the shipped release and nothing of the
# run stays (the seal below empties /var/lib/moat).
systemd-tmpfiles --create /etc/tmpfiles.d/moat.conf
systemctl start moat-smtp.service moat-web.service moat-jobs.service
MOAT_UPDATE_HEALTH_TIMEOUT_S=900 moat update --force /tmp/moat-imagetest.moat
case "$(readlink /opt/moat/current)" in
  releases/*-imagetest-*) echo "provision: moat update switched to $(readlink /opt/moat/current)" ;;
  *) echo "provision: moat update did not switch the release" >&2; exit 1 ;;
esac
curl -ksf https://127.0.0.1/healthz | grep -q -- '-imagetest"' || { echo "provision: the updated release does not serve" >&2; exit 1; }
systemctl stop moat-smtp.service moat-web.service moat-jobs.service moat-agent.service
ln -sfn "$shipped" /opt/moat/current.new && mv -T /opt/moat/current.new /opt/moat/current
rm -rf /opt/moat/releases/*-imagetest-* /tmp/moat-imagetest.moat

# Seal: nothing of the build machine or of this one stays behind.
rm -f /etc/ssh/ssh_host_*
rm -f /root/.ssh/authorized_keys
passwd -l root >/dev/null
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id
apt-get clean
rm -rf /tmp/moat.tar.gz "$files" /var/lib/moat/* /var/log/journal/*
echo "provision: done"
