/*
 * Nothing lost, nothing doubled: real agent processes (`moat-agent`) report over real HTTPS
 * to a real console (`moat web`, TLS with its own certificate) that is killed for two
 * minutes, while one agent is itself killed -9; afterwards every report each agent numbered
 * is stored exactly once. (Its own file: two minutes of outage need tap's whole time limit.)
 */
import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { AgentState } from '../../appliance/agent/state'
import { writeJournal } from '../helpers/journal'
import { moatOk, until } from '../helpers/appliance'
import { fleetConsoleForFile } from '../helpers/fleet-console'

const fc = fleetConsoleForFile(t, ['acme', 'globex'])
const { agent, runAgent, token, hosts } = fc

t.test('agents enroll, report, survive a console outage and their own kill -9: nothing lost, nothing doubled', async (t) => {
  const tok = token('acme', ['--uses', '2'])
  const a = path.join(fc.dir, 'agent-a')
  const b = path.join(fc.dir, 'agent-b')
  const enrolled = agent(a, ['enroll', fc.url, '--token', tok, '--name', 'web01'])
  t.equal(enrolled.code, 0, enrolled.out)
  t.match(enrolled.out, /enrolled as host \d+; console key pinned: sha256\//)
  t.equal(agent(b, ['enroll', fc.url, '--token', tok, '--name', 'db01']).code, 0)
  const third = agent(path.join(fc.dir, 'agent-c'), ['enroll', fc.url, '--token', tok])
  t.equal(third.code, 1, 'a token for two hosts is used up by two')
  t.match(third.out, /unknown, revoked, expired or used up/)

  // web01's journal: real journal files, read by the agent with the real journalctl.
  const journal = path.join(fc.dir, 'journal-a')
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
  // The inventory is taken in a worker thread and comes after the first metrics.
  const detail = await until(() => {
    const d = JSON.parse(moatOk(fc.dir, ['fleet', 'host', String(web01.id), '--json']))
    return d.inventory ? d : null
  }, 60_000, 'the first inventory')
  t.match(detail.inventory, { os: { platform: 'linux' }, cpu: { cores: Number }, mem: { total: Number } }, 'inventory from systeminformation')
  t.ok(detail.inventory.software.some((p: { name: string }) => p.name === 'dpkg'), 'installed packages from dpkg')
  t.match(detail, { cpu: Number, mem_pct: Number, disk_use: Number }, 'the newest metrics on the host')

  const logLines = () => JSON.parse(moatOk(fc.dir, ['fleet', 'logs', String(web01.id), '--json'])) as { source: string; message: string }[]
  await until(() => logLines().length >= 1, 30_000, 'the journal lines at the console')
  t.same(logLines().map((l) => [l.source, l.message]), [['nginx.service', 'upstream timed out']], 'warning and worse only')

  // The console is killed for two minutes, and one agent is killed outright meanwhile; the
  // journal goes on.
  const down = Date.now()
  await fc.stop()
  writeJournal(journal, Array.from({ length: 30 }, (_, i) => ({ at: Date.now() + i, priority: 4, ident: 'app', message: `while away ${i}` })))
  await new Promise((r) => setTimeout(r, 60_000))
  procs[0].kill('SIGKILL')
  await new Promise((r) => setTimeout(r, 2000))
  procs[0] = runAgent(a, withJournal)
  await new Promise((r) => setTimeout(r, Math.max(0, down + 120_000 - Date.now())))
  t.ok(Date.now() - down >= 120_000, `the console was down for ${Math.round((Date.now() - down) / 1000)} s`)
  const waiting = JSON.parse(agent(b, ['status', '--json']).out)
  t.ok(waiting.pending >= 10, `reports were kept while the console was away (${waiting.pending} waiting on db01)`)
  await fc.start()
  // Alone this takes seconds; in CI, beside the other test files, it once took over 60 s.
  await until(() => [a, b].every((d) => JSON.parse(agent(d, ['status', '--json']).out).pending === 0), 180_000, 'the agents catching up')
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
    const db = new Database(path.join(fc.dir, 'moat.db'), { readonly: true })
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

