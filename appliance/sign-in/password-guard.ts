/*
 * One limiter for every place a password (or a second factor) is checked: web sign-in, SMTP
 * AUTH, re-entering the password to create an API token or change it. The same password opens
 * all of them, so a guess through one counts against all.
 *
 * It slows guessing without letting a stranger lock the owner out, the way large providers do:
 * - every (account, client) pair has its own growing delay: a client that keeps guessing
 *   waits longer and longer, whoever it is;
 * - an account under attack from many clients, and a network guessing at many accounts
 *   (password spraying), get growing delays too, but only for clients that have not proven
 *   themselves: a browser that signed in to this account before (a device cookie, kept as a
 *   hash here) or a network this account signed in from before. So the owner's own browser
 *   and mail client keep working while a stranger guesses, and the colleagues behind an
 *   office NAT are not blocked by one guesser among them;
 * - a throttled attempt is refused without checking the password, so guessing during a delay
 *   learns nothing. Every throttle start is logged and raises an admin alert.
 * State is in SQLite (login_failures, sign_in_trust), shared by the web and SMTP processes.
 */
import crypto from 'node:crypto'
import type { Db } from '../db/database'
import { clientNetwork } from '../net/client-network'

export type Channel = 'web' | 'smtp' | 'token' | 'password-change' | 'totp'

export interface Attempt {
  /** the login name, lower-cased */
  account: string
  ip: string
  /** the browser's device cookie, when it sent one */
  device?: string | null
  via: Channel
}

/** `rows`: the provisional failure this attempt counts until it is known to be right. */
export type Decision = { ok: true; rows: number[] } | { ok: false; retryAfterSeconds: number }

interface Rule {
  /** failures in the window before any delay */
  free: number
  baseMs: number
  maxMs: number
}

/** How long the failures of the last hour are remembered. */
export const WINDOW_MS = 60 * 60_000
/** A device or network that signed in is trusted for this long after its last sign-in. */
export const TRUST_MS = 90 * 24 * 3_600_000

export const RULES: Record<'pair' | 'account' | 'network', Rule> = {
  // one client guessing one account: a few typos free, then 1 s, 2 s, 4 s … up to 15 minutes
  pair: { free: 3, baseMs: 1000, maxMs: 15 * 60_000 },
  // one account, guessed at from clients it does not know: about 16 guesses an hour
  account: { free: 5, baseMs: 2000, maxMs: 30 * 60_000 },
  // one network, guessing at many accounts: an office's worth of typos free
  network: { free: 20, baseMs: 1000, maxMs: 15 * 60_000 },
}

function delayMs(failures: number, rule: Rule): number {
  if (failures < rule.free) return 0
  return Math.min(rule.maxMs, rule.baseMs * 2 ** (failures - rule.free))
}

const sha256 = (s: string) => crypto.createHash('sha256').update(s).digest('hex')

export class PasswordGuard {
  private readonly q

  constructor(
    private readonly db: Db,
    private readonly log: (msg: string) => void = (m) => console.warn(m),
  ) {
    this.q = {
      failures: db.prepare(`SELECT count(*) AS n, max(at) AS last FROM login_failures WHERE key = ? AND at > ?`),
      fail: db.prepare(`INSERT INTO login_failures (key, at) VALUES (?, ?)`),
      clear: db.prepare(`DELETE FROM login_failures WHERE key = ?`),
      unfail: db.prepare(`DELETE FROM login_failures WHERE rowid = ?`),
      prune: db.prepare(`DELETE FROM login_failures WHERE at < ?`),
      trusted: db.prepare(`SELECT 1 FROM sign_in_trust WHERE account = ? AND kind = ? AND value = ? AND last_at > ?`),
      trust: db.prepare(
        `INSERT INTO sign_in_trust (account, kind, value, last_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (account, kind, value) DO UPDATE SET last_at = excluded.last_at`,
      ),
      orgOf: db.prepare(`SELECT org_id FROM users WHERE email = ?`).pluck(),
      alert: db.prepare(`INSERT INTO alerts (org_id, kind, message, created_at) VALUES (?, 'password-guessing', ?, ?)`),
    }
  }

  private keys(a: Attempt, now: number): { pair: string; account: string; networkKey: string; network: string; trusted: boolean } {
    const account = a.account.trim().toLowerCase()
    const network = clientNetwork(a.ip)
    const device = a.device && this.q.trusted.get(account, 'device', sha256(a.device), now - TRUST_MS) ? sha256(a.device).slice(0, 16) : null
    const trusted = !!device || !!this.q.trusted.get(account, 'network', network, now - TRUST_MS)
    return {
      // A proven browser is its own client: nobody else's failures reach its pair.
      pair: `pair:${account}|${device ? `device:${device}` : `net:${network}`}`,
      account: `account:${account}`,
      networkKey: `net:${network}`,
      network,
      trusted,
    }
  }

  private waitMs(key: string, rule: Rule, now: number): number {
    const r = this.q.failures.get(key, now - WINDOW_MS) as { n: number; last: number | null }
    return r.last === null ? 0 : Math.max(0, r.last + delayMs(r.n, rule) - now)
  }

  /**
   * May this attempt's password be checked now? A refused one must not be checked at all. An
   * allowed one is counted as a failure at once, in the same transaction as the check, and
   * taken back by succeeded(): otherwise many connections at once would all pass the check
   * before the first wrong answer was counted.
   */
  check(a: Attempt, now = Date.now()): Decision {
    return this.db.transaction((): Decision => {
      const k = this.keys(a, now)
      let wait = this.waitMs(k.pair, RULES.pair, now)
      if (!k.trusted) wait = Math.max(wait, this.waitMs(k.account, RULES.account, now), this.waitMs(k.networkKey, RULES.network, now))
      if (wait > 0) return { ok: false, retryAfterSeconds: Math.ceil(wait / 1000) }
      const rows = [k.pair, k.account, k.networkKey].map((key) => Number(this.q.fail.run(key, now).lastInsertRowid))
      return { ok: true, rows }
    }).immediate()
  }

  /** The password (or code) was wrong: it is counted already; this raises the alerts. */
  failed(a: Attempt, now = Date.now()): void {
    const k = this.keys(a, now)
    // Alert once, as the account or the network starts being slowed.
    const count = (key: string) => (this.q.failures.get(key, now - WINDOW_MS) as { n: number }).n
    const account = a.account.trim().toLowerCase()
    if (count(k.account) === RULES.account.free) {
      this.raise(account, `${RULES.account.free} wrong passwords for ${account} within an hour (last from ${k.network}, ${a.via}); sign-ins from browsers and networks it has not used are slowed.`, now)
    }
    if (count(k.networkKey) === RULES.network.free) {
      this.raise(null, `${RULES.network.free} wrong passwords from ${k.network} within an hour (last for ${account}, ${a.via}); sign-ins from there are slowed except for accounts that used it before.`, now)
    }
  }

  /**
   * The right password: its provisional failure is taken back, the pair starts afresh, and this
   * network is remembered for the account (the account's other failures stay: a stranger still
   * waits). Returns the device token to keep in the browser's cookie when the attempt came
   * from the web.
   */
  succeeded(a: Attempt, allowed: Decision | null, now = Date.now()): string | null {
    const k = this.keys(a, now)
    const account = a.account.trim().toLowerCase()
    this.db.transaction(() => {
      if (allowed?.ok) for (const row of allowed.rows) this.q.unfail.run(row)
      this.q.clear.run(k.pair)
      this.q.clear.run(`pair:${account}|net:${k.network}`)
      this.q.trust.run(account, 'network', k.network, now)
    })()
    if (Math.random() < 0.01) this.q.prune.run(now - WINDOW_MS)
    if (a.via !== 'web') return null
    const device = a.device && /^[A-Za-z0-9_-]{32}$/.test(a.device) ? a.device : crypto.randomBytes(24).toString('base64url')
    this.q.trust.run(account, 'device', sha256(device), now)
    return device
  }

  private raise(account: string | null, message: string, now: number): void {
    this.log(`moat sign-in: ${message}`)
    const orgId = account ? ((this.q.orgOf.get(account) as number | undefined) ?? null) : null
    try {
      this.q.alert.run(orgId, message, now)
    } catch (err) {
      this.log(`moat sign-in: could not raise an alert: ${err}`)
    }
  }
}

/** The browser cookie that proves it signed in before (httpOnly; a year, renewed at each sign-in). */
export const DEVICE_COOKIE = 'moat_device'
export const DEVICE_COOKIE_MAX_AGE_S = 365 * 24 * 3600
