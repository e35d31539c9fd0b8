#!/usr/bin/env node
/*
 * The stand-alone agent's files, for its packages: our modules (relative to the repository)
 * and the npm packages they load, with what those depend on. Read from what loading
 * `moat-agent` actually requires, so a package never misses a module nor carries the
 * appliance's mail side.
 *
 * usage: node agent-packages/closure.js REPO FILES_OUT PACKAGES_OUT [--without PKG ...]
 *   --without: leave a package and what only it needs out (the .msi: better-sqlite3,
 *   whose native part cannot be built for Windows here; the agent uses node:sqlite there).
 */
const path = require('node:path')
const fs = require('node:fs')
const [repo, filesOut, packagesOut, ...rest] = process.argv.slice(2)
const without = new Set(rest.filter((a, i) => rest[i - 1] === '--without'))
// Install-time only: better-sqlite3 runs it when npm installs it, never at run time.
const installOnly = new Set(['prebuild-install'])

require(path.join(repo, 'dist/appliance/agent/cli.js'))
require(path.join(repo, 'dist/appliance/agent/run.js'))
// Started as a worker thread, not required: named here so that it is packed.
require(path.join(repo, 'dist/appliance/agent/collect-worker.js'))
// Its database driver is loaded when the state is first opened.
const os = require('node:os')
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moat-agent-closure-'))
new (require(path.join(repo, 'dist/appliance/agent/state.js')).AgentState)(tmp).close()
fs.rmSync(tmp, { recursive: true, force: true })
const files = new Set()
const roots = new Set()
const pkgOf = (f) => /^node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path.relative(repo, f))?.[1]
for (const [f, m] of Object.entries(require.cache)) {
  const rel = path.relative(repo, f)
  if (pkgOf(f) || rel.startsWith('..') || m === require.main) continue
  files.add(rel)
  // The packages our own modules load; theirs follow from package.json below.
  for (const child of m.children) if (pkgOf(child.filename)) roots.add(pkgOf(child.filename))
}
// And what those packages depend on, which some load only when first used (bindings).
const pkgs = new Set()
const todo = [...roots].filter((p) => !without.has(p))
while (todo.length) {
  const p = todo.pop()
  if (pkgs.has(p)) continue
  pkgs.add(p)
  const deps = require(path.join(repo, 'node_modules', p, 'package.json')).dependencies ?? {}
  for (const d of Object.keys(deps)) if (!installOnly.has(d) && !without.has(d)) todo.push(d)
}
fs.writeFileSync(filesOut, `${[...files].sort().join('\n')}\n`)
fs.writeFileSync(packagesOut, `${[...pkgs].sort().join('\n')}\n`)
