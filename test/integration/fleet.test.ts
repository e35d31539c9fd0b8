/*
 * The fleet over real HTTPS on loopback: a real console (`moat web`, TLS with its own
 * self-signed certificate) and real agent processes (`moat-agent`): the console's answers to
 * what an agent should never send, an appliance in its own console, commands queued while a
 * host is down, and an organisation's settings. (Outages and kills: fleet-outage.test.ts.)
 */
import { spawn, spawnSync } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { request } from '../../appliance/agent/client'
import { AgentState } from '../../appliance/agent/state'
import { HOST_HEADER, REPORTS_PATH, SIGNATURE_HEADER, sign } from '../../appliance/fleet/protocol'
import { writeJournal } from '../helpers/journal'
import { moatOk, until } from '../helpers/appliance'
import { fleetConsoleForFile } from '../helpers/fleet-console'

const fc = fleetConsoleForFile(t, ['acme', 'globex'])
const { agent, runAgent, token, hosts } = fc

t.test('what an agent should never send gets a clear 4xx and stores nothing', async (t) => {
  const d = path.join(fc.dir, 'agent-x')
  t.equal(agent(d, ['enroll', fc.url, '--token', token('globex'), '--name', 'x1']).code, 0)
  const state = new AgentState(d)
  t.teardown(() => state.close())
  const id = state.identity()!
  const post = (body: string, headers: Record<string, string> = {}, key = id.privateKey) =>
    request(fc.url, { method: 'POST', path: REPORTS_PATH, body, pin: id.pin, headers: { [HOST_HEADER]: String(id.hostId), [SIGNATURE_HEADER]: sign(key, 'POST', REPORTS_PATH, id.hostId, body), ...headers } })
  const batch = (seq: number, kind = 'metrics') => JSON.stringify({ reports: [{ seq, kind, at: Date.now(), data: { cpu: 1 } }] })
  const stored = () => hosts().find((h) => h.name === 'x1')!.last_seq

  t.equal((await post(batch(1))).status, 200, 'a good batch')
  const replay = await post(batch(1))
  t.equal(replay.status, 409, 'the same batch again is refused')
  t.match(JSON.parse(replay.body), { lastSeq: 1 })
  const stranger = crypto.generateKeyPairSync('ed25519').privateKey
  t.equal((await post(batch(2), {}, stranger)).status, 401, 'signed with another key')
  t.equal((await post(batch(2), { [SIGNATURE_HEADER]: 'AAAA' })).status, 401, 'a forged signature')
  t.equal((await post('{"reports": [', {})).status, 400, 'not JSON')
  t.equal((await post(batch(2, 'rootkit'))).status, 400, 'an unknown kind')
  t.equal((await post(JSON.stringify({ reports: [{ seq: 3, kind: 'logs', at: 1, data: {} }, { seq: 2, kind: 'logs', at: 1, data: {} }] }))).status, 400, 'sequence going backwards')
  const huge = JSON.stringify({ reports: [{ seq: 2, kind: 'logs', at: Date.now(), data: { text: 'x'.repeat(1_100_000) } }] })
  t.equal((await post(huge)).status, 413, 'over 1 MiB')
  t.equal(stored(), 1, 'none of those stored anything')

  const other = hosts().find((h) => h.name === 'x1')!
  moatOk(fc.dir, ['fleet', 'revoke', String(other.id)])
  t.equal((await post(batch(2))).status, 403, 'a revoked host is refused')
  t.equal(stored(), 1)

  const expired = token('globex', ['--expires', '1'])
  const Database = require('better-sqlite3')
  const db = new Database(path.join(fc.dir, 'moat.db'))
  db.prepare(`UPDATE fleet_tokens SET expires_at = 1 WHERE id = (SELECT max(id) FROM fleet_tokens)`).run()
  db.close()
  const late = agent(path.join(fc.dir, 'agent-y'), ['enroll', fc.url, '--token', expired])
  t.equal(late.code, 1)
  t.match(late.out, /refused the enrollment \(403\)/, 'an expired token')
  const wrongPin = agent(path.join(fc.dir, 'agent-z'), ['enroll', fc.url, '--token', token('globex'), '--pin', 'sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='])
  t.equal(wrongPin.code, 1)
  t.match(wrongPin.out, /not the one pinned/, 'a console whose key is not the pinned one is not talked to')
})

t.test('an appliance enrolls into its own console and reports its mail health', async (t) => {
  const tok = token('acme')
  const env = { ...process.env, MOAT_DATA_DIR: fc.dir, MOAT_AGENT_DIR: path.join(fc.dir, 'agent') }
  const moat = path.join(__dirname, '../../../bin/moat')
  const enrolled = spawnSync(process.execPath, [moat, 'agent', 'enroll', fc.url, '--token', tok, '--name', 'mx1'], { env, encoding: 'utf8' })
  t.equal(enrolled.status, 0, enrolled.stderr)
  const run = spawn(process.execPath, [moat, 'agent', 'run'], { env: { ...env, MOAT_AGENT_METRICS_CRON: '* * * * * *', MOAT_AGENT_FLUSH_MS: '500' }, stdio: 'ignore' })
  t.teardown(() => run.kill('SIGKILL'))
  const mx1 = await until(() => hosts().find((h) => h.name === 'mx1' && h.last_seq >= 3), 30_000, 'the appliance reporting')
  const detail = JSON.parse(moatOk(fc.dir, ['fleet', 'host', String(mx1.id), '--json']))
  t.equal(detail.kind, 'appliance')
  t.match(detail.health, { version: String, queue: { pending: Number, queued: Number, deferred: Number }, quarantined: Number, openAlerts: Number, certificateExpires: Number })
  t.ok(detail.health.certificateExpires > Date.now(), "the console's own certificate, valid")
})

t.test('a command queued while its host is down runs when the host is back', async (t) => {
  const d = path.join(fc.dir, 'agent-cmd')
  t.equal(agent(d, ['enroll', fc.url, '--token', token('acme'), '--name', 'app02']).code, 0)
  const host = hosts().find((h) => h.name === 'app02')!
  const detail = () => JSON.parse(moatOk(fc.dir, ['fleet', 'host', String(host.id), '--json']))
  const inventories = () => {
    const Database = require('better-sqlite3')
    const db = new Database(path.join(fc.dir, 'moat.db'), { readonly: true })
    const n = db.prepare(`SELECT count(*) FROM fleet_reports WHERE host_id = ? AND kind = 'inventory'`).pluck().get(host.id) as number
    db.close()
    return n
  }
  t.match(moatOk(fc.dir, ['fleet', 'command', String(host.id), 'refresh-inventory']), /queued/)
  t.match(detail().commands, [{ kind: 'refresh-inventory', done_at: null }], 'it waits: the host has not reported yet')
  const run = runAgent(d)
  t.teardown(() => run.kill('SIGKILL'))
  const done = await until(() => detail().commands.find((c: { done_at: number | null }) => c.done_at), 60_000, 'the command done')
  t.match(done, { ok: 1, output: 'inventory taken' })
  await until(() => inventories() >= 2, 20_000, 'the refreshed inventory')
  t.ok(inventories() >= 2, 'the start-up inventory and the one the command asked for')
  const bad = require('node:child_process').spawnSync(process.execPath, [path.join(__dirname, '../../../bin/moat'), 'fleet', 'command', String(host.id), 'format-disk'], { env: { ...process.env, MOAT_DATA_DIR: fc.dir }, encoding: 'utf8' })
  t.equal(bad.status, 1)
  t.match(bad.stderr, /must be one of refresh-inventory/)
})

t.test("an organisation's agent settings from the console: an agent follows them at its next report", async (t) => {
  const d = path.join(fc.dir, 'agent-settings')
  t.equal(agent(d, ['enroll', fc.url, '--token', token('globex'), '--name', 'files01']).code, 0)
  const host = hosts().find((h) => h.name === 'files01')!
  const journal = path.join(fc.dir, 'journal-settings')
  fs.mkdirSync(journal)
  writeJournal(journal, [{ at: Date.now() - 30_000, priority: 6, ident: 'backup', message: 'nightly backup finished (info)' }])
  const run = runAgent(d, { MOAT_AGENT_JOURNAL_DIR: journal })
  t.teardown(() => run.kill('SIGKILL'))
  await until(() => hosts().find((h) => h.name === 'files01')!.last_seq >= 2, 30_000, 'files01 reporting')
  const lines = () => (JSON.parse(moatOk(fc.dir, ['fleet', 'logs', String(host.id), '--json'])) as { message: string }[]).map((l) => l.message)
  t.same(lines(), [], 'an info line is not sent by default (warning and worse)')

  const bad = spawnSync(process.execPath, [path.join(__dirname, '../../../bin/moat'), 'fleet', 'settings', '--org', 'globex', '--logs-cron', 'every minute'], { env: { ...process.env, MOAT_DATA_DIR: fc.dir }, encoding: 'utf8' })
  t.equal(bad.status, 1, 'a schedule that is not a cron expression is refused')
  t.match(bad.stderr, /not a cron expression/)
  t.match(moatOk(fc.dir, ['fleet', 'settings', '--org', 'globex', '--log-priority', '6']), /globex: logPriority 6/)
  await until(() => JSON.parse(agent(d, ['status', '--json']).out).settings?.logPriority === 6, 30_000, 'the agent taking the new settings')
  writeJournal(journal, [{ at: Date.now(), priority: 6, ident: 'backup', message: 'a later info line' }])
  await until(() => lines().includes('a later info line'), 30_000, 'info lines sent now')
  t.notOk(lines().includes('nightly backup finished (info)'), 'the cursor had passed the earlier line: it is not sent late')
  t.same(JSON.parse(moatOk(fc.dir, ['fleet', 'settings', '--org', 'acme', '--json'])), {}, "another organisation's agents keep their defaults")
})
