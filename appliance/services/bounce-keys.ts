/*
 * Bounce address tags against backscatter (BATV, "prvs" form of draft-levine-smtp-batv):
 * every outbound envelope sender becomes prvs=KDDDSSSSSS=local@domain, where K is the key
 * number, DDD the day the tag expires (mod 1000) and SSSSSS a keyed hash. A real bounce comes
 * back to that address; backscatter (a bounce of mail forged in our users' names) cannot carry
 * a valid tag. The same key also signs an X-Moat-Bounce-Stamp header, for the servers that
 * bounce to the From: address and quote our headers.
 *
 * Keys are generated at first start and rotated; an old key keeps checking until every tag
 * made with it has expired.
 */
import crypto from 'node:crypto'
import type { Db } from '../db/database'

const DAY_MS = 86_400_000
export const DEFAULT_VALIDITY_DAYS = 7
export const STAMP_HEADER = 'X-Moat-Bounce-Stamp'

export type StampCheck =
  | { status: 'valid'; original: string }
  | { status: 'expired' | 'forged'; original: string }
  | { status: 'none' }

interface Key {
  id: number
  secret: Buffer
  created_at: number
  retired_at: number | null
}

const PRVS = /^prvs=(\d)(\d{3})([0-9a-f]{6})=(.+)$/i

function day(now: number): number {
  return Math.floor(now / DAY_MS)
}

function hmac(secret: Buffer, text: string): Buffer {
  return crypto.createHmac('sha256', secret).update(text).digest()
}

export class BounceKeys {
  private readonly q
  private cache: { at: number; keys: Key[] } | null = null

  constructor(
    db: Db,
    readonly validityDays = DEFAULT_VALIDITY_DAYS,
  ) {
    this.q = {
      keys: db.prepare(`SELECT * FROM bounce_keys ORDER BY id DESC`),
      insert: db.prepare(`INSERT INTO bounce_keys (secret, created_at) VALUES (?, ?)`),
      retire: db.prepare(`UPDATE bounce_keys SET retired_at = ? WHERE retired_at IS NULL AND id <> ?`),
      forget: db.prepare(`DELETE FROM bounce_keys WHERE retired_at IS NOT NULL AND retired_at < ?`),
    }
    if (!this.keys().length) this.rotate()
  }

  private keys(now = Date.now()): Key[] {
    // Read at most every few seconds: a rotation by the CLI reaches the SMTP process soon,
    // without a query per stamped message.
    if (!this.cache || now - this.cache.at > 5000) this.cache = { at: now, keys: this.q.keys.all() as Key[] }
    return this.cache.keys
  }

  /** Makes a new signing key; the previous ones keep checking for the validity window. */
  rotate(now = Date.now()): number {
    const id = Number(this.q.insert.run(crypto.randomBytes(32), now).lastInsertRowid)
    this.q.retire.run(now, id)
    this.q.forget.run(now - (this.validityDays + 1) * DAY_MS)
    this.cache = null
    return id
  }

  list(): { id: number; created_at: number; retired_at: number | null }[] {
    return this.keys(Infinity).map(({ id, created_at, retired_at }) => ({ id, created_at, retired_at }))
  }

  private signing(now: number): Key {
    const k = this.keys(now).find((x) => x.retired_at === null)
    if (!k) throw new Error('no bounce key: the database has none unretired')
    return k
  }

  private checking(kDigit: number, now: number): Key[] {
    const oldest = now - (this.validityDays + 1) * DAY_MS
    return this.keys(now).filter((k) => k.id % 10 === kDigit && (k.retired_at === null || k.retired_at >= oldest))
  }

  /** The tagged envelope sender for an outbound message (the null sender stays null). */
  tagAddress(sender: string, now = Date.now()): string {
    if (!sender || PRVS.test(sender)) return sender
    const key = this.signing(now)
    const k = key.id % 10
    const ddd = String((day(now) + this.validityDays) % 1000).padStart(3, '0')
    const sig = hmac(key.secret, `${k}${ddd}${sender.toLowerCase()}`).subarray(0, 3).toString('hex')
    return `prvs=${k}${ddd}${sig}=${sender}`
  }

  /** Checks a recipient address that may carry a tag. */
  checkAddress(address: string, now = Date.now()): StampCheck {
    const m = PRVS.exec(address)
    if (!m) return { status: 'none' }
    const [, kd, ddd, sig, original] = m
    const daysLeft = (Number(ddd) - (day(now) % 1000) + 1000) % 1000
    if (daysLeft > this.validityDays) return { status: 'expired', original }
    const want = Buffer.from(sig.toLowerCase(), 'hex')
    for (const key of this.checking(Number(kd), now)) {
      const got = hmac(key.secret, `${kd}${ddd}${original.toLowerCase()}`).subarray(0, 3)
      if (crypto.timingSafeEqual(got, want)) return { status: 'valid', original }
    }
    return { status: 'forged', original }
  }

  /** The header stamp: bound to the original sender, so it cannot be moved to another user. */
  headerStamp(sender: string, now = Date.now()): string {
    const key = this.signing(now)
    const expires = day(now) + this.validityDays
    const sig = hmac(key.secret, `h1.${key.id}.${expires}.${sender.toLowerCase()}`).subarray(0, 16).toString('base64url')
    return `v=1; k=${key.id}; e=${expires}; s=${sig}`
  }

  /** Finds our header stamps in a bounce's text and checks each for this recipient. */
  checkHeaderStamps(text: string, recipient: string, now = Date.now()): StampCheck {
    const re = new RegExp(`^${STAMP_HEADER}:\\s*v=1; k=(\\d+); e=(\\d+); s=([A-Za-z0-9_-]{22})`, 'gim')
    let seen: StampCheck = { status: 'none' }
    for (const m of text.matchAll(re)) {
      const [, kid, expires, sig] = m
      const key = this.keys(now).find((k) => k.id === Number(kid))
      const want = key && hmac(key.secret, `h1.${kid}.${expires}.${recipient.toLowerCase()}`).subarray(0, 16).toString('base64url')
      if (!want || want !== sig) {
        seen = { status: 'forged', original: recipient }
        continue
      }
      if (Number(expires) < day(now)) {
        seen = { status: 'expired', original: recipient }
        continue
      }
      return { status: 'valid', original: recipient }
    }
    return seen
  }
}
