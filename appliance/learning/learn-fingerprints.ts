/*
 * The fingerprints job (every minute): turns what the appliance learned since its last run
 * into campaign fingerprints (learning/fingerprints.ts), from three sources:
 *
 *   reports   every "report spam" and "not spam", with its reporter's trust: an admin's
 *             word (or `moat learn`) weighs TRUST.admin, a user's TRUST.user.
 *   surespam  inbound mail scored far past surespam, with no allow-list entry involved, and
 *             with rules (not the classifier alone) giving at least AUTO_RULE_POINTS:
 *             SpamAssassin's auto-learn safeguards, so the classifier never teaches itself.
 *   outbound  mail the organisation's own users sent teaches ham (unless the organisation
 *             opted out): replies to a campaign's look-alikes are not spam. Forwards are
 *             left out, since forwarding a spam to the admin is not vouching for it.
 *
 * Each source keeps a cursor in settings, so a row is fingerprinted once; a crash repeats
 * at most one batch, and recording the same word twice changes nothing.
 */
import zlib from 'node:zlib'
import type { Db } from '../db/database'
import { parseMessage } from '../engine/message'
import type { RawStore } from '../services/raw-store'
import { StoredSettings } from '../services/stored-settings'
import { TRUST } from './fingerprint-index'
import { fingerprintKeys, recordFingerprints } from './fingerprint-store'
import { fingerprintsOf } from './fingerprints'

export const AUTO_SPAM_SCORE = 15
export const AUTO_RULE_POINTS = 4
const BATCH = 500
const FORWARD = /^\s*(fwd?|fw|wg|tr|rv|i)\s*:/i
const ALLOW_LISTED = /^(ALLOWLISTED_|ALLOWLIST_)/

export interface LearnedFingerprints {
  reports: number
  auto: number
  outbound: number
}

/** Who a report came from, and how far that word is trusted. */
export function reporterOf(db: Db, reportedBy: string): { reporter: string; trust: number } {
  if (reportedBy === 'moat learn') return { reporter: 'admin:cli', trust: TRUST.admin }
  const email = /^([^\s:]+@[^\s:]+)/.exec(reportedBy)?.[1]?.toLowerCase()
  if (!email) return { reporter: `user:${reportedBy}`, trust: TRUST.user }
  if (db.prepare(`SELECT 1 FROM admins WHERE email = ?`).get(email)) return { reporter: `admin:${email}`, trust: TRUST.admin }
  const user = db.prepare(`SELECT role FROM users WHERE email = ?`).get(email) as { role: string } | undefined
  return user?.role === 'org_admin' ? { reporter: `admin:${email}`, trust: TRUST.admin } : { reporter: `user:${email}`, trust: TRUST.user }
}

export async function learnFingerprints(db: Db, raws: RawStore, now = Date.now()): Promise<LearnedFingerprints> {
  const settings = new StoredSettings(db)
  const out: LearnedFingerprints = { reports: 0, auto: 0, outbound: 0 }

  for (;;) {
    const after = settings.get('fingerprints_reports_cursor', 0)
    const rows = db.prepare(`SELECT id, label, raw, reported_by FROM classifier_reports WHERE id > ? ORDER BY id LIMIT ?`).all(after, BATCH) as {
      id: number
      label: 'spam' | 'ham'
      raw: Buffer
      reported_by: string
    }[]
    if (!rows.length) break
    for (const r of rows) {
      const keys = fingerprintKeys(fingerprintsOf(await parseMessage(zlib.gunzipSync(r.raw))))
      out.reports += recordFingerprints(db, keys, { label: r.label, ...reporterOf(db, r.reported_by) }, now)
    }
    settings.set('fingerprints_reports_cursor', rows[rows.length - 1].id)
  }

  for (;;) {
    const after = settings.get('fingerprints_messages_cursor', 0)
    const rows = db
      .prepare(
        `SELECT m.id, m.org_id, m.raw_id, m.direction, m.verdict, m.score, m.symbols, m.subject, o.learn_outbound
           FROM messages m JOIN organisations o ON o.id = m.org_id WHERE m.id > ? ORDER BY m.id LIMIT ?`,
      )
      .all(after, BATCH) as { id: number; org_id: number; raw_id: number; direction: string; verdict: string; score: number; symbols: string; subject: string | null; learn_outbound: number }[]
    if (!rows.length) break
    for (const m of rows) {
      const word = learnable(m)
      if (!word) continue
      let raw: Buffer
      try {
        raw = raws.read(m.raw_id)
      } catch {
        continue // already gone (retention); nothing to learn
      }
      const keys = fingerprintKeys(fingerprintsOf(await parseMessage(raw)))
      const n = recordFingerprints(db, keys, word === 'spam' ? { label: 'spam', reporter: 'auto', trust: TRUST.auto, orgId: m.org_id } : { label: 'ham', reporter: `outbound:${m.org_id}`, trust: TRUST.user, orgId: m.org_id }, now)
      if (word === 'spam') out.auto += n
      else out.outbound += n
    }
    settings.set('fingerprints_messages_cursor', rows[rows.length - 1].id)
  }
  return out
}

function learnable(m: { direction: string; verdict: string; score: number; symbols: string; subject: string | null; learn_outbound: number }): 'spam' | 'ham' | null {
  if (m.direction === 'out') return m.learn_outbound && !FORWARD.test(m.subject ?? '') && m.verdict === 'clean' ? 'ham' : null
  if (m.verdict !== 'surespam' || m.score < AUTO_SPAM_SCORE) return null
  const symbols = JSON.parse(m.symbols || '[]') as { name: string; weight?: number }[]
  if (symbols.some((s) => ALLOW_LISTED.test(s.name))) return null
  const rules = symbols.filter((s) => !s.name.startsWith('CLASSIFIER_') && !s.name.startsWith('FUZZY_')).reduce((sum, s) => sum + Math.max(0, s.weight ?? 0), 0)
  return rules >= AUTO_RULE_POINTS ? 'spam' : null
}
