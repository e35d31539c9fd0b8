/* Retention: quarantine after its days, archive after its days, files only when unused. */
import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { openDatabase } from '../../../appliance/db/database'
import { GroupCommitter } from '../../../appliance/db/group-commit'
import { run } from '../../../appliance/jobs/retention'
import { MailStore } from '../../../appliance/services/mail-store'
import { RawStore } from '../../../appliance/services/raw-store'
import { Spool } from '../../../appliance/services/spool'
import { Tenants } from '../../../appliance/services/tenants'

const DAY = 86_400_000

t.test('purges by each organisation\'s retention and keeps what is still needed', async (t) => {
  const dir = t.testdir()
  const db = openDatabase(path.join(dir, 'moat.db'))
  const spool = new Spool(path.join(dir, 'spool'))
  const raws = new RawStore(db, spool)
  const store = new MailStore(db, raws, new GroupCommitter(db))
  const tenants = new Tenants(db)
  const acme = tenants.addOrg('acme')
  tenants.setPolicy('acme', { archive_retention_days: 10, quarantine_retention_days: 5 })
  const now = Date.parse('2026-11-27T00:00:00Z')
  const accept = (id: string, ageDays: number, action: 'deliver' | 'quarantine', bodySize = 10) =>
    store.accept({
      queueId: id, direction: 'in', raw: Buffer.from(`Subject: ${id}\r\n\r\n${'b'.repeat(bodySize)}\r\n`), receivedAt: now - ageDays * DAY,
      clientIp: '127.0.0.1', helo: 'h', mailFrom: 'x@y.test', fromHeader: null, subject: id, messageIdHeader: null, bodyText: 'body',
      parts: [{ orgId: acme.id, verdict: action === 'deliver' ? 'clean' : 'spam', score: 0, symbols: [], rcpts: [{ address: 'a@example.com', userId: null, action }] }],
    })
  const young = await accept('young', 1, 'quarantine')
  const oldQ = await accept('old-quarantined', 6, 'quarantine')
  const ancient = await accept('ancient', 20, 'deliver', 2 * 1024 * 1024) // large: a spool file
  const ancientQ = await accept('ancient-quarantined', 20, 'quarantine')
  db.prepare(`UPDATE deliveries SET state = 'delivered'`).run()
  // The tracking centre's refusals: kept 30 days by default.
  const refusal = db.prepare(`INSERT INTO smtp_refusals (at, session, client_ip, rcpt, stage, code, reason, plugin) VALUES (?, 's', '192.0.2.1', ?, 'rcpt', 550, 'no', 'p')`)
  refusal.run(now - 31 * DAY, 'old@example.com')
  refusal.run(now - 29 * DAY, 'recent@example.com')

  const r = await run({ db, spool, now })
  t.same(r, { quarantinePurged: 2, archivePurged: 2, deliveryAttemptsPurged: 0, reportsPurged: 0, fleet: { metricSamples: 0, metricHours: 0, logLines: 0, reports: 0 }, fingerprints: { revoked: 0, deleted: 0 }, refusalsPurged: 1 }, 'two quarantine entries past 5 days; two messages past 10 days; a refusal past 30 days')
  t.same(db.prepare('SELECT rcpt FROM smtp_refusals').pluck().all(), ['recent@example.com'], 'the refusal within 30 days stays')
  const subjects = (db.prepare(`SELECT subject FROM messages ORDER BY subject`).all() as { subject: string }[]).map((x) => x.subject)
  t.same(subjects, ['old-quarantined', 'young'], 'the 6-day-old message stays archived after its quarantine entry went')
  const spoolFiles = () => (fs.readdirSync(path.join(dir, 'spool'), { recursive: true }) as string[]).filter((f) => f.endsWith('.eml'))
  t.same(spoolFiles(), [], "the large message's spool file went with it")
  const rawIds = (db.prepare(`SELECT id FROM raw_messages ORDER BY id`).all() as { id: number }[]).map((r) => r.id)
  t.same(rawIds, [young.rawId, oldQ.rawId].sort((a, b) => a - b), 'raw bytes of purged messages are gone')
  t.notOk(ancientQ.rawId === undefined)
  t.ok(raws.read(young.rawId).toString().startsWith('Subject: young'))
  t.equal((db.prepare(`SELECT count(*) AS n FROM archive_fts WHERE archive_fts MATCH 'ancient'`).get() as { n: number }).n, 0, 'index rows go too')
  t.same(await run({ db, spool, now }), { quarantinePurged: 0, archivePurged: 0, deliveryAttemptsPurged: 0, reportsPurged: 0, fleet: { metricSamples: 0, metricHours: 0, logLines: 0, reports: 0 }, fingerprints: { revoked: 0, deleted: 0 }, refusalsPurged: 0 }, 'idempotent')
})

t.test('a failed commit rejects every job of its batch and leaves no spool file', async (t) => {
  const dir = t.testdir()
  const db = openDatabase(path.join(dir, 'moat.db'))
  const spool = new Spool(path.join(dir, 'spool'))
  const store = new MailStore(db, new RawStore(db, spool), new GroupCommitter(db))
  const input = {
    queueId: 'q1', direction: 'in' as const, raw: Buffer.alloc(2 * 1024 * 1024, 'x'), receivedAt: Date.now(), clientIp: null, helo: null,
    mailFrom: '', fromHeader: null, subject: null, messageIdHeader: null, bodyText: '',
    parts: [{ orgId: 999, verdict: 'clean' as const, score: 0, symbols: [], rcpts: [] }], // no such organisation
  }
  await t.rejects(store.accept(input), /FOREIGN KEY/)
  const files = fs.readdirSync(path.join(dir, 'spool'), { recursive: true }).filter((f) => String(f).endsWith('.eml'))
  t.same(files, [])
})
