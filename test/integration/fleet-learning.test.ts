/*
 * Learning across the fleet end to end, with real parts: three appliances (their own data,
 * their own `moat agent run`) enrolled into a real console over HTTPS; users of two of them
 * report copies of one campaign; the third, whose users reported nothing, recognises its next
 * copy over real SMTP (Haraka) and quarantines it.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import { openDatabase } from '../../appliance/db/database'
import { parseMessage } from '../../appliance/engine/message'
import { recordReports } from '../../appliance/engine/reports'
import { corpusRaw } from '../../appliance/engine/recipe/corpus'
import { corpusDir, readManifest } from '../../appliance/engine/training'
import { campaignCopy } from '../../bench/campaign-variants'
import { fleetConsole } from '../helpers/fleet-console'
import { moatOk, provisionAcme, smtpSend, startSink, startSmtp, until, workDir } from '../helpers/appliance'

const MOAT = path.join(__dirname, '../../../bin/moat')

t.test("two appliances' reports protect a third within seconds, over the console", async (t) => {
  const fc = await fleetConsole(t, ['acme', 'globex', 'initech'])
  const sink = await startSink()
  t.teardown(() => sink.close())
  const appliance = (name: string, org: string) => {
    const dir = path.join(workDir(t), 'data')
    provisionAcme(dir, sink.port)
    const env = { ...process.env, MOAT_DATA_DIR: dir, MOAT_AGENT_DIR: path.join(dir, 'agent') }
    const enrolled = spawnSync(process.execPath, [MOAT, 'agent', 'enroll', fc.url, '--token', fc.token(org), '--name', name], { env, encoding: 'utf8' })
    t.equal(enrolled.status, 0, enrolled.stderr)
    const run: ChildProcess = spawn(process.execPath, [MOAT, 'agent', 'run'], { env: { ...env, MOAT_AGENT_FLUSH_MS: '500', MOAT_AGENT_BACKOFF_MAX_MS: '3000' }, stdio: 'ignore' })
    t.teardown(() => run.kill('SIGKILL'))
    return dir
  }
  const a = appliance('mx-a', 'acme')
  const b = appliance('mx-b', 'globex')
  const c = appliance('mx-c', 'initech')

  const row = readManifest(corpusDir()).find((r) => r.source === 'sa-spam' && r.sha256.startsWith('2'))!
  const original = await parseMessage(corpusRaw(row))
  const report = (dir: string, seed: number, by: string) => {
    const db = openDatabase(path.join(dir, 'moat.db'))
    recordReports(db, [{ raw: campaignCopy(original, seed, 'alice@example.com'), spam: true }], by)
    db.close()
    // The jobs process does this every 15 seconds.
    moatOk(dir, ['jobs', 'run', 'fingerprints'])
  }
  const bDb = new Database(path.join(b, 'moat.db'), { readonly: true })
  t.teardown(() => bDb.close())
  const fleetHostsAtB = () => bDb.prepare(`SELECT count(DISTINCT reporter) FROM fuzzy_hashes WHERE origin = 'fleet' AND revoked_at IS NULL`).pluck().get() as number

  report(a, 1, 'alice@example.com: archive 1')
  await until(() => fleetHostsAtB() === 1, 60_000, "A's words at B")
  const started = Date.now()
  report(c, 2, 'alice@example.com: quarantine 7')
  await until(() => fleetHostsAtB() === 2, 60_000, "C's words at B")
  t.comment(`C's report reached B's database ${((Date.now() - started) / 1000).toFixed(1)} s after it was made`)
  t.ok(bDb.prepare(`SELECT 1 FROM fuzzy_hashes WHERE origin = 'local'`).get() === undefined, "B's own users reported nothing")

  const smtp = await startSmtp(b)
  t.teardown(() => smtp.stop())
  const sent = await smtpSend(smtp.port, { from: 'news@sender.example', to: ['alice@example.com'], data: campaignCopy(original, 3, 'alice@example.com') })
  t.equal(sent.final.code, 250)
  const m = await until(() => bDb.prepare(`SELECT verdict, symbols FROM messages WHERE direction = 'in' ORDER BY id DESC LIMIT 1`).get() as { verdict: string; symbols: string } | undefined, 10_000, 'the copy at B')
  const names = (JSON.parse(m.symbols) as { name: string }[]).map((s) => s.name)
  // Two appliances whose users reported it independently: confirmed.
  t.ok(names.includes('FUZZY_TEXT'), `B recognises the campaign: ${names.filter((n) => n.startsWith('FUZZY'))}`)
  t.not(m.verdict, 'clean', 'and quarantines it')

  // What travelled: hashes only, no address of A's or C's users.
  const consoleDb = new Database(path.join(fc.dir, 'moat.db'), { readonly: true })
  t.teardown(() => consoleDb.close())
  const stored = JSON.stringify(consoleDb.prepare(`SELECT * FROM fleet_fingerprints`).all())
  t.notMatch(stored, /alice|example\.com/, 'no address reached the console')

  // The MSP withdraws what C shared: B drops it at its next pull.
  const shared = JSON.parse(moatOk(fc.dir, ['fleet', 'learning', '--json'])) as { host_id: number; spam: number }[]
  const cHost = fc.hosts().find((h) => h.name === 'mx-c')!
  t.ok(shared.find((r) => r.host_id === cHost.id)!.spam > 0, 'the console lists what C shared')
  t.match(moatOk(fc.dir, ['fleet', 'learning', 'withdraw', '--host', String(cHost.id)]), /[1-9]\d* words? withdrawn/)
  await until(() => fleetHostsAtB() === 1, 60_000, "C's words gone from B")
  t.pass("B no longer counts C's words")
  t.ok(fs.existsSync(path.join(b, 'agent')))
})
