#!/usr/bin/env bash
# Runs inside the image over Packer's SSH: installs the staged release under /opt/moat, the
# system user, the systemd units, the firewall and the console screen; then removes the
# build's access (its SSH key, root's password) and anything per-machine, so each appliance
# makes its own at first boot (machine id, SSH host keys, TLS key, bounce and DKIM keys).
set -euo pipefail
files=/tmp/files

tar -xzf /tmp/moat.tar.gz -C /
chown -R root:root /opt/moat
id moat >/dev/null 2>&1 || useradd --system --home-dir /var/lib/moat --shell /usr/sbin/nologin moat
install -d -o moat -g moat -m 0750 /var/lib/moat
install -d -m 0755 /etc/moat /etc/issue.d
install -m 0644 "$files/moat.env" /etc/moat/moat.env
install -m 0644 "$files"/systemd/* /etc/systemd/system/
install -m 0755 "$files/moat-console-issue" /usr/local/sbin/moat-console-issue
install -m 0755 "$files/nftables.conf" /etc/nftables.conf
cat > /usr/local/bin/moat <<'SH'
#!/bin/sh
# The appliance's command line, as the moat user with the appliance's settings.
set -a
. /etc/moat/moat.env
[ -r /etc/moat/antivirus.env ] && . /etc/moat/antivirus.env
set +a
if [ "$(id -u)" = 0 ]; then exec runuser -u moat -- /opt/moat/node/bin/node /opt/moat/bin/moat "$@"; fi
exec /opt/moat/node/bin/node /opt/moat/bin/moat "$@"
SH
chmod 0755 /usr/local/bin/moat

# Logs go to the journal; freshclam fetches signatures whenever the appliance is online.
systemctl daemon-reload
systemctl enable moat-smtp.service moat-web.service moat-jobs.service moat-console.service moat-antivirus.path nftables.service clamav-freshclam.service
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
runuser -u moat -- env MOAT_DATA_DIR=/tmp/moat-smoke /opt/moat/node/bin/node /opt/moat/bin/moat org list >/dev/null
rm -rf /tmp/moat-smoke

# Seal: nothing of the build machine or of this one stays behind.
rm -f /etc/ssh/ssh_host_*
rm -f /root/.ssh/authorized_keys
passwd -l root >/dev/null
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id
apt-get clean
rm -rf /tmp/moat.tar.gz "$files" /var/lib/moat/* /var/log/journal/*
echo "provision: done"
