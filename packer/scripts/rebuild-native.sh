#!/usr/bin/env bash
# Compiles the one native module (better-sqlite3) in APP_DIR/node_modules for the Node.js
# runtime in NODE_DIR (the one that ships: the image's, the agent package's), not the build
# machine's. Used by stage.sh (the image) and agent-packages/deb/build.sh (the agent .deb).
#
# usage: rebuild-native.sh APP_DIR NODE_DIR
set -euo pipefail
app=${1:?app dir}
nodedir=${2:?node dir}
node="$nodedir/bin/node"
gyp="$(npm root -g)/npm/node_modules/node-gyp/bin/node-gyp.js"
[ -f "$gyp" ] || gyp="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")/node_modules/node-gyp/bin/node-gyp.js"
# Under `npm run`, npm exports its own nodedir (npm_config_nodedir=/usr on Debian's and
# NodeSource's npm), which node-gyp prefers to --nodedir: the module was built for the build
# machine's Node. Point both at the shipped Node.
(cd "$app/node_modules/better-sqlite3" && PATH="$nodedir/bin:$PATH" npm_config_nodedir="$nodedir" "$node" "$gyp" rebuild --release --nodedir="$nodedir" --loglevel=error >/dev/null)
rm -rf "$app/node_modules/better-sqlite3/build/Release/obj" "$app/node_modules/better-sqlite3/build/Release/obj.target" "$app/node_modules/better-sqlite3/deps" "$app/node_modules/better-sqlite3/src"
"$node" -e "const D = require('$app/node_modules/better-sqlite3'); new D(':memory:').prepare('select 1').get()" \
  || { echo "rebuild-native: better-sqlite3 does not load under $("$node" --version)" >&2; exit 1; }
