/*
 * The console's side of learning across the fleet: appliances report the words their users
 * and their own auto-learning gave on campaign fingerprints (hashes only, reporters as
 * hashes: no message text, no address leaves a customer), and every other appliance of the
 * same MSP pulls them by version and uses them beside its own.
 *
 * What one host can do is bounded, because one host may be hostile or broken:
 *   - its word on a fingerprint is relayed with at most HOST_CAP trust, however many of its
 *     users said so, and the receiving appliance ignores a fingerprint only one other host
 *     vouches for (learning/fingerprint-index.ts): it takes two hosts, or a local reporter
 *     agreeing, before a relayed word moves anything;
 *   - at most HOST_WORDS_PER_HOUR new words an hour are taken from it; the rest is refused
 *     (counted on the host, for the MSP to see), never queued;
 *   - malformed words refuse the whole report with a clear error.
 * The MSP can withdraw a host's words, one reporter's, or one fingerprint's; a withdrawal is
 * a new version with trust 0, and spreads the way the words did.
 *
 * A host that has been right before (fleet/reputation.ts) is proven: its spam words are
 * relayed with trust VOUCHED, which the others let count alone. A host loses that the moment
 * another host says ham of, or the MSP withdraws, enough of what it called spam; its vouched
 * words are then relayed again, capped, so no appliance keeps trusting them.
 *
 * The bundle a host pulls is signed with the console's own Ed25519 key (made at first use,
 * kept in settings); the agent pins that key the first time, as it pins the TLS key.
 */
import crypto from 'node:crypto'
import type { Db } from '../db/database'
import type BetterSqlite3 from 'better-sqlite3'
import { FleetError } from './errors'
import { Reputation } from './reputation'
import { FLEET_VOUCHED } from '../learning/fingerprint-index'

export const HOST_CAP = 2
/** The relayed trust of a proven appliance's spam word: it may count alone elsewhere (fleet/reputation.ts). */
export const VOUCHED = FLEET_VOUCHED
export const HOST_WORDS_PER_HOUR = 5000
export const MAX_WORDS_PER_REPORT = 2000
export const MAX_WORDS_PER_BUNDLE = 5000
const SIGNING_KEY_SETTING = 'fleet_signing_key'

export type Kind = 'text' | 'url' | 'attachment'
const KEY_FORMAT: Record<Kind, RegExp> = { text: /^[0-9a-f]{256}$/, url: /^[0-9a-f]{32}$/, attachment: /^[0-9a-f]{32}$/ }

/** One reporter's word as an appliance shares it; `trust: 0` withdraws it. */
export interface SharedWord {
  kind: Kind
  key: string
  label: 'spam' | 'ham'
  /** a hash of the reporter, stable on that appliance (never the address) */
  reporter: string
  trust: number
}

/** One host's word on one fingerprint, as relayed to the others; trust 0: withdrawn. */
export interface RelayedWord {
  kind: Kind
  key: string
  label: 'spam' | 'ham'
  host: number
  trust: number
}

export interface Bundle {
  version: number
  words: RelayedWord[]
}

/** Checks a 'fingerprints' report's data; throws a FleetError (400) naming what is wrong. */
export function validWords(data: unknown): SharedWord[] {
  const words = (data as { words?: unknown })?.words
  if (!Array.isArray(words)) throw new FleetError('fingerprints: words must be an array')
  if (words.length > MAX_WORDS_PER_REPORT) throw new FleetError(`fingerprints: at most ${MAX_WORDS_PER_REPORT} words a report`, 413)
  return words.map((w: Partial<SharedWord>, i) => {
    const kind = w?.kind as Kind
    if (!(kind in KEY_FORMAT)) throw new FleetError(`fingerprints: word ${i}: kind must be text, url or attachment`)
    if (typeof w.key !== 'string' || !KEY_FORMAT[kind].test(w.key)) throw new FleetError(`fingerprints: word ${i}: not a ${kind} fingerprint`)
    if (w.label !== 'spam' && w.label !== 'ham') throw new FleetError(`fingerprints: word ${i}: label must be spam or ham`)
    if (typeof w.reporter !== 'string' || !/^[\w:.-]{1,64}$/.test(w.reporter)) throw new FleetError(`fingerprints: word ${i}: reporter must be a short hash`)
    if (!Number.isInteger(w.trust) || w.trust! < 0 || w.trust! > 3) throw new FleetError(`fingerprints: word ${i}: trust must be 0 to 3`)
    return { kind, key: w.key, label: w.label, reporter: w.reporter, trust: w.trust! }
  })
}

export class FleetLearning {
  // Prepared once: ingest runs for every report batch, and withdraw per word.
  private readonly maxVersion: BetterSqlite3.Statement
  private readonly mspOfHost: BetterSqlite3.Statement
  private readonly getWord: BetterSqlite3.Statement
  private readonly insertWord: BetterSqlite3.Statement
  private readonly setWord: BetterSqlite3.Statement
  private readonly setReporters: BetterSqlite3.Statement
  private readonly withdrawWord: BetterSqlite3.Statement
  private readonly vouchedRows: BetterSqlite3.Statement
  private readonly vouchedOn: BetterSqlite3.Statement
  private readonly reputation: Reputation

  constructor(private readonly db: Db) {
    this.maxVersion = db.prepare(`SELECT max(version) FROM fleet_fingerprints`).pluck()
    this.mspOfHost = db.prepare(`SELECT o.msp_id FROM fleet_hosts h JOIN organisations o ON o.id = h.org_id WHERE h.id = ?`).pluck()
    this.getWord = db.prepare(`SELECT id, reporters, trust, withdrawn_by FROM fleet_fingerprints WHERE host_id = ? AND kind = ? AND key = ? AND label = ?`)
    this.insertWord = db.prepare(`INSERT INTO fleet_fingerprints (msp_id, host_id, kind, key, label, reporters, trust, created_at, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
    this.setWord = db.prepare(`UPDATE fleet_fingerprints SET reporters = ?, trust = ?, version = ? WHERE id = ?`)
    this.setReporters = db.prepare(`UPDATE fleet_fingerprints SET reporters = ? WHERE id = ?`)
    this.withdrawWord = db.prepare(`UPDATE fleet_fingerprints SET trust = 0, withdrawn_by = ?, version = ? WHERE id = ?`)
    this.vouchedRows = db.prepare(`SELECT id, reporters FROM fleet_fingerprints WHERE host_id = ? AND trust = ${VOUCHED}`)
    // Hosts that said spam of a fingerprint (vouched for or not then) and are vouched for now.
    this.vouchedOn = db.prepare(
      `SELECT DISTINCT f.host_id FROM fleet_fingerprints f WHERE f.msp_id = ? AND f.kind = ? AND f.key = ? AND f.label = 'spam'
         AND EXISTS (SELECT 1 FROM fleet_fingerprints v WHERE v.host_id = f.host_id AND v.trust = ${VOUCHED})`,
    )
    this.reputation = new Reputation(db)
  }

  /** The trust a host's word is relayed with: its reporters' best, capped, or VOUCHED for a proven host's spam. */
  private relayTrust(reporters: Record<string, number>, label: 'spam' | 'ham', proven: boolean): number {
    const trust = Math.min(HOST_CAP, Math.max(0, ...Object.values(reporters)))
    return trust > 0 && proven && label === 'spam' ? VOUCHED : trust
  }

  /** A host no longer proven: its vouched words go out again, capped. */
  private recheck(hostId: number): void {
    if (this.reputation.of(hostId, true).proven) return
    for (const r of this.vouchedRows.all(hostId) as { id: number; reporters: string }[]) {
      this.setWord.run(r.reporters, this.relayTrust(JSON.parse(r.reporters), 'spam', false), this.nextVersion(), r.id)
    }
  }

  /** The vouched-for hosts whose spam words a ham word on these fingerprints contradicts. */
  private contradicted(msp: number | undefined, keys: { kind: Kind; key: string }[]): Set<number> {
    const hosts = new Set<number>()
    for (const k of keys) for (const h of this.vouchedOn.all(msp, k.kind, k.key) as { host_id: number }[]) hosts.add(h.host_id)
    return hosts
  }

  /** Whether a host is proven, and what its standing rests on. */
  standing(hostId: number): { corroborated: number; contradicted: number; proven: boolean } {
    return this.reputation.of(hostId, true)
  }

  private nextVersion(): number {
    return ((this.maxVersion.get() as number | null) ?? 0) + 1
  }

  private mspOf(hostId: number): number | undefined {
    return this.mspOfHost.get(hostId) as number | undefined
  }

  /**
   * Takes a host's words (inside the report batch's transaction). Returns how many changed a
   * relayed word and how many were refused for flooding.
   */
  ingest(hostId: number, words: SharedWord[], now = Date.now()): { changed: number; refused: number } {
    const msp = this.mspOf(hostId)
    let budget = HOST_WORDS_PER_HOUR - (this.db.prepare(`SELECT count(*) FROM fleet_fingerprints WHERE host_id = ? AND created_at > ?`).pluck().get(hostId, now - 3_600_000) as number)
    let changed = 0
    let refused = 0
    const proven = words.some((w) => w.label === 'spam' && w.trust > 0) && this.reputation.of(hostId, false, now).proven
    const hamKeys: { kind: Kind; key: string }[] = []
    for (const w of words) {
      if (w.label === 'ham' && w.trust > 0) hamKeys.push(w)
      const row = this.getWord.get(hostId, w.kind, w.key, w.label) as { id: number; reporters: string; trust: number; withdrawn_by: string | null } | undefined
      if (!row) {
        if (w.trust === 0) continue
        if (budget <= 0) {
          refused++
          continue
        }
        budget--
        this.insertWord.run(msp, hostId, w.kind, w.key, w.label, JSON.stringify({ [w.reporter]: w.trust }), this.relayTrust({ [w.reporter]: w.trust }, w.label, proven), now, this.nextVersion())
        changed++
        continue
      }
      // The MSP withdrew this one: the host's later words on it do not bring it back.
      if (row.withdrawn_by) continue
      const reporters = JSON.parse(row.reporters) as Record<string, number>
      if (w.trust === 0) delete reporters[w.reporter]
      else reporters[w.reporter] = w.trust
      const trust = this.relayTrust(reporters, w.label, proven)
      if (trust !== row.trust) {
        this.setWord.run(JSON.stringify(reporters), trust, this.nextVersion(), row.id)
        changed++
      } else this.setReporters.run(JSON.stringify(reporters), row.id)
    }
    if (refused) this.db.prepare(`UPDATE fleet_hosts SET learning_refused = learning_refused + ? WHERE id = ?`).run(refused, hostId)
    for (const other of this.contradicted(msp, hamKeys)) if (other !== hostId) this.recheck(other)
    return { changed, refused }
  }

  /** What the host's MSP's other hosts said since `version`, oldest first, at most `limit`. */
  since(hostId: number, version: number, limit = MAX_WORDS_PER_BUNDLE): Bundle {
    const msp = this.mspOf(hostId)
    if (msp === undefined) throw new FleetError('unknown host', 401)
    const rows = this.db
      .prepare(`SELECT kind, key, label, host_id AS host, trust, version FROM fleet_fingerprints WHERE msp_id = ? AND version > ? AND host_id <> ? ORDER BY version LIMIT ?`)
      .all(msp, version, hostId, limit) as (RelayedWord & { version: number })[]
    const newest = rows.length === limit ? rows[rows.length - 1].version : Math.max(version, (this.maxVersion.get() as number | null) ?? 0)
    return { version: newest, words: rows.map(({ version: _v, ...w }) => w) }
  }

  /**
   * The MSP withdraws words: all of a host's, one reporter's on a host, or one fingerprint's
   * everywhere. `mspIds`: the MSPs the caller may act for (null: all).
   */
  withdraw(by: { hostId?: number; reporter?: string; kind?: Kind; key?: string }, mspIds: number[] | null, who: string): number {
    const where = ['withdrawn_by IS NULL']
    const args: unknown[] = []
    if (by.hostId !== undefined) where.push('host_id = ?'), args.push(by.hostId)
    if (by.kind && by.key) where.push('kind = ? AND key = ?'), args.push(by.kind, by.key)
    if (args.length === 0) throw new FleetError('withdraw what? name a host or a fingerprint')
    if (mspIds) where.push(`msp_id IN (${mspIds.map(() => '?').join(',')})`), args.push(...mspIds)
    return this.db.transaction(() => {
      const rows = this.db.prepare(`SELECT id, host_id, label, reporters FROM fleet_fingerprints WHERE ${where.join(' AND ')}`).all(...args) as { id: number; host_id: number; label: 'spam' | 'ham'; reporters: string }[]
      let n = 0
      const hosts = new Set<number>()
      for (const r of rows) {
        if (by.reporter) {
          // One reporter of the host: the host's word is what its other reporters say.
          const reporters = JSON.parse(r.reporters) as Record<string, number>
          if (!(by.reporter in reporters)) continue
          delete reporters[by.reporter]
          this.setWord.run(JSON.stringify(reporters), this.relayTrust(reporters, r.label, this.reputation.of(r.host_id).proven), this.nextVersion(), r.id)
        } else this.withdrawWord.run(who, this.nextVersion(), r.id)
        hosts.add(r.host_id)
        n++
      }
      // A withdrawn word counts against the host that said it.
      for (const h of hosts) this.recheck(h)
      return n
    }).immediate()
  }

  /** What each host shared (words standing, by label), had refused, and its standing, for the hosts given (null: all). */
  status(hostIds: number[] | null): { host_id: number; spam: number; ham: number; withdrawn: number; refused: number; corroborated: number; contradicted: number; proven: boolean }[] {
    const scope = hostIds ? `WHERE h.id IN (${hostIds.map(() => '?').join(',') || 'NULL'})` : `WHERE h.kind = 'appliance'`
    const rows = this.db
      .prepare(
        `SELECT h.id AS host_id,
                count(CASE WHEN f.label = 'spam' AND f.trust > 0 THEN 1 END) AS spam,
                count(CASE WHEN f.label = 'ham' AND f.trust > 0 THEN 1 END) AS ham,
                count(CASE WHEN f.withdrawn_by IS NOT NULL THEN 1 END) AS withdrawn,
                h.learning_refused AS refused
           FROM fleet_hosts h LEFT JOIN fleet_fingerprints f ON f.host_id = h.id ${scope} GROUP BY h.id ORDER BY h.id`,
      )
      .all(...(hostIds ?? [])) as { host_id: number; spam: number; ham: number; withdrawn: number; refused: number }[]
    return rows.map((r) => ({ ...r, ...this.reputation.of(r.host_id, true) }))
  }

  /** The console's bundle signing key: made at first use, never leaves the settings table. */
  signingKey(): { privateKey: crypto.KeyObject; publicKey: string } {
    let pem = this.db.prepare(`SELECT value FROM settings WHERE key = ?`).pluck().get(SIGNING_KEY_SETTING) as string | undefined
    if (!pem) {
      const fresh = crypto.generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
      this.db.prepare(`INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`).run(SIGNING_KEY_SETTING, JSON.stringify(fresh))
      pem = this.db.prepare(`SELECT value FROM settings WHERE key = ?`).pluck().get(SIGNING_KEY_SETTING) as string
    }
    const privateKey = crypto.createPrivateKey(JSON.parse(pem) as string)
    return { privateKey, publicKey: crypto.createPublicKey(privateKey).export({ format: 'der', type: 'spki' }).toString('base64') }
  }

  /** A bundle as the body sent, and its signature over exactly those bytes. */
  signedBundle(hostId: number, version: number): { body: string; signature: string; publicKey: string } {
    const body = JSON.stringify(this.since(hostId, version))
    const { privateKey, publicKey } = this.signingKey()
    return { body, signature: crypto.sign(null, Buffer.from(body), privateKey).toString('base64'), publicKey }
  }
}

/** The agent's check of a bundle against the pinned key. */
export function verifyBundle(body: string, signature: string, publicKey: string): boolean {
  try {
    const key = crypto.createPublicKey({ key: Buffer.from(publicKey, 'base64'), format: 'der', type: 'spki' })
    return key.asymmetricKeyType === 'ed25519' && crypto.verify(null, Buffer.from(body), key, Buffer.from(signature, 'base64'))
  } catch {
    return false
  }
}
