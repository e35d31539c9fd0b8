/*
 * The fleet over real HTTPS on loopback: a real console (`moat web`, TLS with its own
 * self-signed certificate) and real agent processes (`moat-agent`) that enroll, report on
 * schedules, keep reports while the console is down and while they are killed, and send each
 * exactly once. And the console's answers to what an agent should never send.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { request } from '../../appliance/agent/client'
import { AgentState } from '../../appliance/agent/state'
import { HOST_HEADER, REPORTS_PATH, SIGNATURE_HEADER, sign } from '../../appliance/fleet/protocol'
import { writeJournal } from '../helpers/journal'
import { freePort, moatOk, type RunningWeb, startWeb, until, workDir } from '../helpers/appliance'

const AGENT = path.join(__dirname, '../../../bin/moat-agent')
let dir: string
let web: RunningWeb
let webPort: number
let url: string

const startConsole = async () => {
  web = await startWeb(dir, { MOAT_WEB_TLS: '1', MOAT_WEB_PORT: String(webPort) })
}

function agent(agentDir: string, args: string[]): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [AGENT, ...args], { env: { ...process.env, MOAT_AGENT_DIR: agentDir }, encoding: 'utf8' })
  return { code: r.status, out: `${r.stdout}${r.stderr}` }
}

function runAgent(agentDir: string, env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, [AGENT, 'run'], {
    env: { ...process.env, MOAT_AGENT_DIR: agentDir, MOAT_AGENT_METRICS_CRON: '* * * * * *', MOAT_AGENT_LOGS_CRON: '* * * * * *', MOAT_AGENT_FLUSH_MS: '500', MOAT_AGENT_BACKOFF_MAX_MS: '3000', ...env },
    stdio: 'ignore',
  })
}

const token = (org: string, extra: string[] = []) => moatOk(dir, ['fleet', 'token', 'create', '--org', org, ...extra]).trim().split('\n').at(-1)!
const hosts = () => JSON.parse(moatOk(dir, ['fleet', 'hosts', '--json'])) as { id: number; name: string; org: string; status: string; version: string; last_seq: number }[]

t.before(async () => {
  dir = workDir(t)
  moatOk(dir, ['org', 'add', 'acme'])
  moatOk(dir, ['org', 'add', 'globex'])
  webPort = await freePort()
  await startConsole()
  url = `https://127.0.0.1:${webPort}`
})
t.teardown(() => web?.stop())

t.test('agents enroll, report, survive a console outage and their own kill -9: nothing lost, nothing doubled', async (t) => {
  const tok = token('acme', ['--uses', '2'])
  const a = path.join(dir, 'agent-a')
  const b = path.join(dir, 'agent-b')
  const enrolled = agent(a, ['enroll', url, '--token', tok, '--name', 'web01'])
  t.equal(enrolled.code, 0, enrolled.out)
  t.match(enrolled.out, /enrolled as host \d+; console key pinned: sha256\//)
  t.equal(agent(b, ['enroll', url, '--token', tok, '--name', 'db01']).code, 0)
  const third = agent(path.join(dir, 'agent-c'), ['enroll', url, '--token', tok])
  t.equal(third.code, 1, 'a token for two hosts is used up by two')
  t.match(third.out, /unknown, revoked, expired or used up/)

  // web01's journal: real journal files, read by the agent with the real journalctl.
  const journal = path.join(dir, 'journal-a')
  fs.mkdirSync(journal)
  writeJournal(journal, [
    { at: Date.now() - 60_000, priority: 3, unit: 'nginx.service', message: 'upstream timed out' },
    { at: Date.now() - 50_000, priority: 6, ident: 'CRON', message: 'session opened (info: not sent)' },
  ])
  const withJournal = { MOAT_AGENT_JOURNAL_DIR: journal }
  let procs = [runAgent(a, withJournal), runAgent(b)]
  t.teardown(() => procs.forEach((p) => p.kill('SIGKILL')))
  await until(() => hosts().every((h) => h.last_seq >= 3), 30_000, 'both agents reporting')
  const listed = hosts()
  t.same(listed.map((h) => [h.name, h.org, h.status]).sort(), [['db01', 'acme', 'online'], ['web01', 'acme', 'online']])
  const web01 = listed.find((h) => h.name === 'web01')!
  const detail = JSON.parse(moatOk(dir, ['fleet', 'host', String(web01.id), '--json']))
  t.match(detail.inventory, { os: { platform: 'linux' }, cpu: { cores: Number }, mem: { total: Number } }, 'inventory from systeminformation')
  t.ok(detail.inventory.software.some((p: { name: string }) => p.name === 'dpkg'), 'installed packages from dpkg')
  t.match(detail, { cpu: Number, mem_pct: Number, disk_use: Number }, 'the newest metrics on the host')

  const logLines = () => JSON.parse(moatOk(dir, ['fleet', 'logs', String(web01.id), '--json'])) as { source: string; message: string }[]
  await until(() => logLines().length >= 1, 30_000, 'the journal lines at the console')
  t.same(logLines().map((l) => [l.source, l.message]), [['nginx.service', 'upstream timed out']], 'warning and worse only')

  // The console is killed for two minutes, and one agent is killed outright meanwhile; the
  // journal goes on.
  const down = Date.now()
  await web.stop()
  writeJournal(journal, Array.from({ length: 30 }, (_, i) => ({ at: Date.now() + i, priority: 4, ident: 'app', message: `while away ${i}` })))
  await new Promise((r) => setTimeout(r, 60_000))
  procs[0].kill('SIGKILL')
  await new Promise((r) => setTimeout(r, 2000))
  procs[0] = runAgent(a, withJournal)
  await new Promise((r) => setTimeout(r, Math.max(0, down + 120_000 - Date.now())))
  t.ok(Date.now() - down >= 120_000, `the console was down for ${Math.round((Date.now() - down) / 1000)} s`)
  const waiting = JSON.parse(agent(b, ['status', '--json']).out)
  t.ok(waiting.pending >= 10, `reports were kept while the console was away (${waiting.pending} waiting on db01)`)
  await startConsole()
  await until(() => [a, b].every((d) => JSON.parse(agent(d, ['status', '--json']).out).pending === 0), 30_000, 'the agents catching up')
  // A report taken after the catch-up and before the stop is still in the agent's buffer,
  // not lost: the stopped agents send what they hold, then the console is compared.
  await Promise.all(procs.map((p) => new Promise((r) => (p.exitCode !== null || p.signalCode ? r(null) : (p.once('exit', r), p.kill('SIGTERM'))))))
  procs = []
  for (const d of [a, b]) t.equal(agent(d, ['flush']).code, 0, 'the rest of the buffer sent')
  for (const [d, name] of [[a, 'web01'], [b, 'db01']] as const) {
    const state = new AgentState(d)
    const lastSeq = state.lastSeq()
    state.close()
    const host = hosts().find((h) => h.name === name)!
    const Database = require('better-sqlite3')
    const db = new Database(path.join(dir, 'moat.db'), { readonly: true })
    // Metrics and log lines live in their own tables, each row with its report's number.
    const r = db
      .prepare(
        `SELECT count(*) AS n, min(seq) AS lo, max(seq) AS hi, count(DISTINCT seq) AS distinct_n FROM (
           SELECT seq FROM fleet_reports WHERE host_id = @id UNION ALL SELECT seq FROM fleet_metrics WHERE host_id = @id
           UNION ALL SELECT DISTINCT seq FROM fleet_logs WHERE host_id = @id)`,
      )
      .get({ id: host.id })
    db.close()
    t.same(r, { n: lastSeq, lo: 1, hi: lastSeq, distinct_n: lastSeq }, `${name}: every one of its ${lastSeq} reports is stored once`)
  }
  const away = logLines().filter((l) => l.message.startsWith('while away')).map((l) => l.message)
  t.same(away.sort(), Array.from({ length: 30 }, (_, i) => `while away ${i}`).sort(), 'the journal lines written while the console was away: each once')
})

t.test('what an agent should never send gets a clear 4xx and stores nothing', async (t) => {
  const d = path.join(dir, 'agent-x')
  t.equal(agent(d, ['enroll', url, '--token', token('globex'), '--name', 'x1']).code, 0)
  const state = new AgentState(d)
  t.teardown(() => state.close())
  const id = state.identity()!
  const post = (body: string, headers: Record<string, string> = {}, key = id.privateKey) =>
    request(url, { method: 'POST', path: REPORTS_PATH, body, pin: id.pin, headers: { [HOST_HEADER]: String(id.hostId), [SIGNATURE_HEADER]: sign(key, 'POST', REPORTS_PATH, id.hostId, body), ...headers } })
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
  moatOk(dir, ['fleet', 'revoke', String(other.id)])
  t.equal((await post(batch(2))).status, 403, 'a revoked host is refused')
  t.equal(stored(), 1)

  const expired = token('globex', ['--expires', '1'])
  const Database = require('better-sqlite3')
  const db = new Database(path.join(dir, 'moat.db'))
  db.prepare(`UPDATE fleet_tokens SET expires_at = 1 WHERE id = (SELECT max(id) FROM fleet_tokens)`).run()
  db.close()
  const late = agent(path.join(dir, 'agent-y'), ['enroll', url, '--token', expired])
  t.equal(late.code, 1)
  t.match(late.out, /refused the enrollment \(403\)/, 'an expired token')
  const wrongPin = agent(path.join(dir, 'agent-z'), ['enroll', url, '--token', token('globex'), '--pin', 'sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='])
  t.equal(wrongPin.code, 1)
  t.match(wrongPin.out, /not the one pinned/, 'a console whose key is not the pinned one is not talked to')
})

t.test('an appliance enrolls into its own console and reports its mail health', async (t) => {
  const tok = token('acme')
  const env = { ...process.env, MOAT_DATA_DIR: dir, MOAT_AGENT_DIR: path.join(dir, 'agent') }
  const moat = path.join(__dirname, '../../../bin/moat')
  const enrolled = spawnSync(process.execPath, [moat, 'agent', 'enroll', url, '--token', tok, '--name', 'mx1'], { env, encoding: 'utf8' })
  t.equal(enrolled.status, 0, enrolled.stderr)
  const run = spawn(process.execPath, [moat, 'agent', 'run'], { env: { ...env, MOAT_AGENT_METRICS_CRON: '* * * * * *', MOAT_AGENT_FLUSH_MS: '500' }, stdio: 'ignore' })
  t.teardown(() => run.kill('SIGKILL'))
  const mx1 = await until(() => hosts().find((h) => h.name === 'mx1' && h.last_seq >= 3), 30_000, 'the appliance reporting')
  const detail = JSON.parse(moatOk(dir, ['fleet', 'host', String(mx1.id), '--json']))
  t.equal(detail.kind, 'appliance')
  t.match(detail.health, { version: String, queue: { pending: Number, queued: Number, deferred: Number }, quarantined: Number, openAlerts: Number, certificateExpires: Number })
  t.ok(detail.health.certificateExpires > Date.now(), "the console's own certificate, valid")
})

t.test('a command queued while its host is down runs when the host is back', async (t) => {
  const d = path.join(dir, 'agent-cmd')
  t.equal(agent(d, ['enroll', url, '--token', token('acme'), '--name', 'app02']).code, 0)
  const host = hosts().find((h) => h.name === 'app02')!
  const detail = () => JSON.parse(moatOk(dir, ['fleet', 'host', String(host.id), '--json']))
  const inventories = () => {
    const Database = require('better-sqlite3')
    const db = new Database(path.join(dir, 'moat.db'), { readonly: true })
    const n = db.prepare(`SELECT count(*) FROM fleet_reports WHERE host_id = ? AND kind = 'inventory'`).pluck().get(host.id) as number
    db.close()
    return n
  }
  t.match(moatOk(dir, ['fleet', 'command', String(host.id), 'refresh-inventory']), /queued/)
  t.match(detail().commands, [{ kind: 'refresh-inventory', done_at: null }], 'it waits: the host has not reported yet')
  const run = runAgent(d)
  t.teardown(() => run.kill('SIGKILL'))
  const done = await until(() => detail().commands.find((c: { done_at: number | null }) => c.done_at), 30_000, 'the command done')
  t.match(done, { ok: 1, output: 'inventory taken' })
  await until(() => inventories() >= 2, 20_000, 'the refreshed inventory')
  t.ok(inventories() >= 2, 'the start-up inventory and the one the command asked for')
  const bad = require('node:child_process').spawnSync(process.execPath, [path.join(__dirname, '../../../bin/moat'), 'fleet', 'command', String(host.id), 'format-disk'], { env: { ...process.env, MOAT_DATA_DIR: dir }, encoding: 'utf8' })
  t.equal(bad.status, 1)
  t.match(bad.stderr, /must be one of refresh-inventory/)
})

t.test("an organisation's agent settings from the console: an agent follows them at its next report", async (t) => {
  const d = path.join(dir, 'agent-settings')
  t.equal(agent(d, ['enroll', url, '--token', token('globex'), '--name', 'files01']).code, 0)
  const host = hosts().find((h) => h.name === 'files01')!
  const journal = path.join(dir, 'journal-settings')
  fs.mkdirSync(journal)
  writeJournal(journal, [{ at: Date.now() - 30_000, priority: 6, ident: 'backup', message: 'nightly backup finished (info)' }])
  const run = runAgent(d, { MOAT_AGENT_JOURNAL_DIR: journal })
  t.teardown(() => run.kill('SIGKILL'))
  await until(() => hosts().find((h) => h.name === 'files01')!.last_seq >= 2, 30_000, 'files01 reporting')
  const lines = () => (JSON.parse(moatOk(dir, ['fleet', 'logs', String(host.id), '--json'])) as { message: string }[]).map((l) => l.message)
  t.same(lines(), [], 'an info line is not sent by default (warning and worse)')

  const bad = spawnSync(process.execPath, [path.join(__dirname, '../../../bin/moat'), 'fleet', 'settings', '--org', 'globex', '--logs-cron', 'every minute'], { env: { ...process.env, MOAT_DATA_DIR: dir }, encoding: 'utf8' })
  t.equal(bad.status, 1, 'a schedule that is not a cron expression is refused')
  t.match(bad.stderr, /not a cron expression/)
  t.match(moatOk(dir, ['fleet', 'settings', '--org', 'globex', '--log-priority', '6']), /globex: logPriority 6/)
  await until(() => JSON.parse(agent(d, ['status', '--json']).out).settings?.logPriority === 6, 30_000, 'the agent taking the new settings')
  writeJournal(journal, [{ at: Date.now(), priority: 6, ident: 'backup', message: 'a later info line' }])
  await until(() => lines().includes('a later info line'), 30_000, 'info lines sent now')
  t.notOk(lines().includes('nightly backup finished (info)'), 'the cursor had passed the earlier line: it is not sent late')
  t.same(JSON.parse(moatOk(dir, ['fleet', 'settings', '--org', 'acme', '--json'])), {}, "another organisation's agents keep their defaults")
})
