/* User reports: recorded at once, learned in batches by the learn-reports job, kept for export. */
import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { openDatabase } from '../../../appliance/db/database'
import { features, predictFeatures } from '../../../appliance/engine/logistic'
import { parseMessage } from '../../../appliance/engine/message'
import { latestModelId, loadActiveModel } from '../../../appliance/engine/models'
import { exportReports, learnNow, learnPendingReports, pendingReports, pruneReports, recordReports, REPORT_DAYS } from '../../../appliance/engine/reports'
import { tokenize } from '../../../appliance/engine/tokenize'
import { readManifest } from '../../../appliance/engine/training'
import { runJob } from '../../../appliance/jobs/scheduler'
import { Spool } from '../../../appliance/services/spool'
import { loadSamples } from '../../../bench/accuracy'

const mail = (subject: string, body: string) => Buffer.from(`From: Deals <deals@offers.example>\r\nTo: bob@example.com\r\nSubject: ${subject}\r\n\r\n${body}\r\n`)
const SPAM = mail('Cheap meds, no prescription', 'Buy cheap meds now, best prices, no prescription needed, order today')
const HAM = mail('Minutes of the board meeting', 'Attached are the minutes of Tuesday; please send corrections by Friday')

function database(t: { testdir(): string; teardown(fn: () => unknown): void }) {
  const db = openDatabase(path.join(t.testdir(), 'moat.db'))
  t.teardown(() => db.close())
  return db
}

async function spamProbability(db: ReturnType<typeof openDatabase>, raw: Buffer): Promise<number> {
  return predictFeatures(loadActiveModel(db).model, features(tokenize(await parseMessage(raw))))
}

const learnedBy = (db: ReturnType<typeof openDatabase>) =>
  (db.prepare(`SELECT learned_model_id AS m FROM classifier_reports ORDER BY id`).all() as { m: number | null }[]).map((r) => r.m)

t.test('a report is recorded at once and learned by the job, all pending as one version', async (t) => {
  const db = database(t)
  const before = await spamProbability(db, SPAM)
  const ids = recordReports(db, [{ raw: SPAM, spam: true }, { raw: HAM, spam: false }], 'alice@example.com')
  t.equal(ids.length, 2)
  t.equal(pendingReports(db), 2)
  t.equal(latestModelId(db), null, 'recording writes no model version')

  const r = await learnPendingReports(db)
  t.equal(r.learned, 2)
  t.equal(r.model, latestModelId(db))
  t.same(learnedBy(db), [r.model, r.model], 'both learned by that one version')
  t.equal(pendingReports(db), 0)
  t.ok((await spamProbability(db, SPAM)) > before, 'the reported spam now scores as more likely spam')
  t.same(await learnPendingReports(db), { model: null, learned: 0 }, 'nothing left to learn')
  t.equal(await runJob('learn-reports', { db, spool: new Spool(t.testdir()), log: () => {} }), null, 'an idle run has nothing to log')
})

t.test('a second click is the same report; the other label is a new one', async (t) => {
  const db = database(t)
  const [first] = recordReports(db, [{ raw: SPAM, spam: true }], 'alice@example.com')
  const [again] = recordReports(db, [{ raw: SPAM, spam: true }], 'bob@example.com')
  t.equal(again, first)
  t.equal(pendingReports(db), 1)
  const [flipped] = recordReports(db, [{ raw: SPAM, spam: false }], 'carol@example.com')
  t.not(flipped, first)
  t.equal(pendingReports(db), 2)
})

t.test('two learners at once: each report is learned once, in one version', async (t) => {
  const db = database(t)
  recordReports(db, [{ raw: SPAM, spam: true }, { raw: HAM, spam: false }], 'alice@example.com')
  const [a, b] = await Promise.all([learnPendingReports(db), learnPendingReports(db)])
  t.equal(a.learned + b.learned, 2, 'the learner that stored second found the batch learned')
  const versions = db.prepare(`SELECT id FROM classifier_models`).all()
  t.equal(versions.length, 1)
  t.same(learnedBy(db), [latestModelId(db), latestModelId(db)])
})

t.test('moat learn learns at once and returns the new version', async (t) => {
  const db = database(t)
  const id = await learnNow(db, [{ raw: SPAM, spam: true }], 'moat learn')
  t.equal(id, latestModelId(db))
  t.equal(await learnNow(db, [{ raw: SPAM, spam: true }], 'moat learn'), id, 'a repeat teaches nothing new')
  t.equal(latestModelId(db), id)
})

t.test('retention keeps the newest learned reports, for REPORT_DAYS, and every pending one', async (t) => {
  const db = database(t)
  const now = Date.now()
  recordReports(db, [0, 1, 2].map((i) => ({ raw: mail(`offer ${i}`, 'buy now'), spam: true })), 'x', now)
  await learnPendingReports(db)
  recordReports(db, [{ raw: HAM, spam: false }], 'x', now - 400 * 86_400_000)
  t.equal(pruneReports(db, now, 1), 2, 'two learned reports beyond the newest one')
  t.equal(pendingReports(db), 1, 'the pending report is kept, however old')
  t.equal(pruneReports(db, now), 0, 'the newest is young enough')
  t.equal(pruneReports(db, now + (REPORT_DAYS + 1) * 86_400_000), 1, 'until REPORT_DAYS have passed')
  t.equal(pendingReports(db), 1)
})

t.test('reports export as a corpus the bench reads, the newest label deciding', async (t) => {
  const db = database(t)
  const atReceipt = [{ name: 'RBL_SPAMCOP' }, { name: 'CLASSIFIER_99' }, { name: 'SPF_FAIL' }]
  recordReports(db, [{ raw: SPAM, spam: true, symbols: atReceipt }, { raw: HAM, spam: true }], 'x')
  recordReports(db, [{ raw: HAM, spam: false }], 'y')
  const dir = path.join(t.testdir(), 'corpus')
  t.same(exportReports(db, dir), { ham: 1, spam: 1 })
  const rows = readManifest(dir)
  t.same(rows.map((r) => [r.label, r.source]).sort(), [['ham', 'reports'], ['spam', 'reports']])
  const ham = rows.find((r) => r.label === 'ham')!
  t.same(fs.readFileSync(path.join(dir, ham.path)), HAM, 'the message exactly as reported')
  t.same(rows.find((r) => r.label === 'spam')!.symbols, ['RBL_SPAMCOP', 'SPF_FAIL'], 'what only the receiving server knew; content symbols are recomputed')

  process.env.MOAT_CORPUS = dir
  t.teardown(() => delete process.env.MOAT_CORPUS)
  const samples = await loadSamples(5)
  const spam = samples.find((x) => x.spam)!
  t.ok(spam.fixed.some((x) => x.name === 'RBL_SPAMCOP'), 'the accuracy bench scores the receipt-time symbols too')
  t.notOk(samples.find((x) => !x.spam)!.fixed.some((x) => x.name.startsWith('RBL_')))
})
