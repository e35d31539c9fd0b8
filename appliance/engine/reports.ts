/*
 * What users report ("report spam", "not spam") is recorded at once and learned in batches.
 * Learning loads, updates and stores the whole model: most of a second and 6 MB a version.
 * Done per click, a bulk "not spam" of 50 messages held the web service's one thread for
 * half a minute, and every click wrote a new version. So a report is a row, and the
 * learn-reports job (every minute) teaches the active model all that is pending as one new
 * version.
 *
 * The reported messages are kept for a while (REPORTS_KEPT, REPORT_DAYS), so that a site
 * can measure and retrain the engine on its own mail: `moat reports export` writes them as a
 * corpus the accuracy bench reads (MOAT_CORPUS).
 */
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import zlib from 'node:zlib'
import type { Db } from '../db/database'
import type { RawStore } from '../services/raw-store'
import { features, learnFeatures, serialiseLogistic } from './logistic'
import { latestModelId, loadActiveModel, storeModel } from './models'
import { parseMessage } from './message'
import { tokenize } from './tokenize'

export interface Report {
  raw: Buffer
  spam: boolean
  /** The symbols the message got when it was received, if known (its quarantine entry's or archived original's). */
  symbols?: { name: string }[]
}

/**
 * Symbols only the receiving server can know: blocklist answers and authentication at that
 * moment. Kept with a report, they let the accuracy bench measure them on a site's mail;
 * the content symbols are recomputed from the message.
 */
const RECEIPT_ONLY = /^(RBL_|DBL_|SURBL_|SPF_|DKIM_|DMARC_|ARC_)/

export function receiptSymbols(symbols: { name: string }[]): string[] {
  return [...new Set(symbols.map((s) => s.name).filter((n) => RECEIPT_ONLY.test(n)))].sort()
}

/** "Not spam" on a quarantine entry: its message, with the symbols it got on receipt. */
export function quarantineReport(raws: RawStore, e: { raw_id: number; symbols: string }): Report {
  return { raw: raws.read(e.raw_id), spam: false, symbols: JSON.parse(e.symbols) }
}

/**
 * Learned reports kept for export and retraining, the newest this many and for at most
 * REPORT_DAYS: they are copies of users' mail, so they do not outlive it by much. Pending
 * ones are never dropped.
 */
export const REPORTS_KEPT = 20_000
export const REPORT_DAYS = 90
// A report weighs more than one training message: the user saw this one go wrong.
const PASSES = 3
const BATCH = 500
const MODEL_VERSIONS_KEPT = 5

/**
 * Records reports to be learned; returns their ids. The same message reported again with
 * the same label is the same report (a second click must not count twice); with the other
 * label it is a new report, and the newer label is what the model learns last.
 */
export function recordReports(db: Db, reports: Report[], by: string, now = Date.now()): number[] {
  const last = db.prepare(`SELECT id, label FROM classifier_reports WHERE sha256 = ? ORDER BY id DESC LIMIT 1`)
  const insert = db.prepare(`INSERT INTO classifier_reports (label, sha256, raw, bytes, symbols, reported_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`)
  // Hashing and compressing happen before the write transaction, which the mail path waits on.
  const rows = reports.map((r) => ({
    label: r.spam ? 'spam' : 'ham',
    sha256: crypto.createHash('sha256').update(r.raw).digest('hex'),
    gz: zlib.gzipSync(r.raw),
    bytes: r.raw.length,
    symbols: receiptSymbols(r.symbols ?? []).join(' '),
  }))
  return db.transaction(() =>
    rows.map((r) => {
      const prev = last.get(r.sha256) as { id: number; label: string } | undefined
      if (prev?.label === r.label) return prev.id
      return Number(insert.run(r.label, r.sha256, r.gz, r.bytes, r.symbols, by, now).lastInsertRowid)
    }),
  )()
}

export function pendingReports(db: Db): number {
  return (db.prepare(`SELECT count(*) AS n FROM classifier_reports WHERE learned_model_id IS NULL`).get() as { n: number }).n
}

export interface LearnResult {
  /** The newest model version written, or null if nothing was pending. */
  model: number | null
  learned: number
}

/**
 * Teaches the active model every pending report, BATCH at a time, each batch one new version.
 * The slow part (parse, learn, serialise) runs outside any transaction; the version is
 * stored only if no other learner (the job, `moat learn`) stored one meanwhile, else the
 * batch is learned again on top of that one, so no report's lesson is lost.
 */
export async function learnPendingReports(db: Db, now = Date.now()): Promise<LearnResult> {
  const result: LearnResult = { model: null, learned: 0 }
  const select = db.prepare(`SELECT id, label, raw FROM classifier_reports WHERE learned_model_id IS NULL ORDER BY id LIMIT ?`)
  for (let attempt = 0; attempt < 10; ) {
    const batch = select.all(BATCH) as { id: number; label: string; raw: Buffer }[]
    if (!batch.length) return result
    const base = latestModelId(db)
    const model = loadActiveModel(db, { learn: true }).model
    const lessons = await Promise.all(batch.map(async (r) => ({ f: features(tokenize(await parseMessage(zlib.gunzipSync(r.raw)))), spam: r.label === 'spam' })))
    for (let pass = 0; pass < PASSES; pass++) for (const l of lessons) learnFeatures(model, l.f, l.spam)
    const blob = serialiseLogistic(model)
    const first = batch[0].id
    const lastId = batch[batch.length - 1].id
    const stored = db.transaction(() => {
      if (latestModelId(db) !== base) return null
      const id = storeModel(db, blob, model.messages, `${batch.length} user report${batch.length === 1 ? '' : 's'} (${first}–${lastId})`, now)
      const mark = db.prepare(`UPDATE classifier_reports SET learned_model_id = ? WHERE id = ? AND learned_model_id IS NULL`)
      for (const r of batch) mark.run(id, r.id)
      db.prepare(`DELETE FROM classifier_models WHERE id NOT IN (SELECT id FROM classifier_models ORDER BY id DESC LIMIT ?)`).run(MODEL_VERSIONS_KEPT)
      return id
    }).immediate()
    if (stored === null) {
      attempt++
      continue
    }
    result.model = stored
    result.learned += batch.length
  }
  throw new Error('other learners kept storing model versions; the pending reports will be learned on the next run')
}

/** Records reports and learns them now (`moat learn`); returns the new model version. */
export async function learnNow(db: Db, reports: Report[], by: string): Promise<number> {
  recordReports(db, reports, by)
  const { model } = await learnPendingReports(db)
  // Nothing pending: every report was a repeat of one already learned.
  return model ?? latestModelId(db)!
}

/** Drops learned reports beyond the newest `keep` or older than `days`. */
export function pruneReports(db: Db, now = Date.now(), keep = REPORTS_KEPT, days = REPORT_DAYS): number {
  return db
    .prepare(
      `DELETE FROM classifier_reports WHERE learned_model_id IS NOT NULL
        AND (created_at < ? OR id NOT IN (SELECT id FROM classifier_reports WHERE learned_model_id IS NOT NULL ORDER BY id DESC LIMIT ?))`,
    )
    .run(now - days * 86_400_000, keep).changes
}

/**
 * Writes the reported messages as a labelled corpus (`<label>/<sha256>.eml` and a
 * manifest.csv like shared/corpus', plus a `symbols` column of receipt-time symbols), the
 * newest report of each message deciding its label.
 */
export function exportReports(db: Db, dir: string): { ham: number; spam: number } {
  const rows = db
    .prepare(
      `SELECT r.id, r.label, r.sha256, r.raw, r.bytes, r.symbols FROM classifier_reports r
        WHERE r.id = (SELECT max(id) FROM classifier_reports WHERE sha256 = r.sha256) ORDER BY r.id`,
    )
    .iterate() as Iterable<{ id: number; label: 'ham' | 'spam'; sha256: string; raw: Buffer; bytes: number; symbols: string }>
  const counts = { ham: 0, spam: 0 }
  const manifest = ['path,label,source,sha256,split,bytes,original,symbols']
  for (const label of ['ham', 'spam']) fs.mkdirSync(path.join(dir, label), { recursive: true })
  for (const r of rows) {
    const rel = `${r.label}/${r.sha256}.eml`
    fs.writeFileSync(path.join(dir, rel), zlib.gunzipSync(r.raw))
    manifest.push([rel, r.label, 'reports', r.sha256, 'dev', r.bytes, `report-${r.id}`, r.symbols].join(','))
    counts[r.label]++
  }
  fs.writeFileSync(path.join(dir, 'manifest.csv'), `${manifest.join('\n')}\n`)
  return counts
}
