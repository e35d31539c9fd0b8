/*
 * DNS blocklist lookups with a per-TTL cache. One resolver per checker, pointed at
 * MOAT_DNS_SERVER when set (tests run rbldnsd on loopback), with a bounded timeout and
 * number of tries, so a dead DNS server costs at most that per lookup and is asked again
 * next time (it is never switched off for good).
 */
import { promises as dns } from 'node:dns'
import net from 'node:net'
import type { Db } from '../db/database'

export interface Zone {
  zone: string
  symbol: string
  /** A commercial list whose listed senders are delayed on purpose. */
  delay: boolean
}

export interface Listing extends Zone {
  codes: string[]
}

export interface DnsblResult {
  listings: Listing[]
  errors: { zone: string; code: string }[]
}

const NEGATIVE_TTL_MS = 300_000
const MIN_TTL_MS = 60_000
const MAX_TTL_MS = 3_600_000

export function reverseName(ip: string): string | null {
  if (net.isIPv4(ip)) return ip.split('.').reverse().join('.')
  if (net.isIPv6(ip)) {
    const parts = ip.split('::')
    const head = parts[0] ? parts[0].split(':') : []
    const tail = parts.length > 1 && parts[1] ? parts[1].split(':') : []
    const groups = [...head, ...Array(8 - head.length - tail.length).fill('0'), ...tail]
    return groups.map((g) => g.padStart(4, '0')).join('').split('').reverse().join('.')
  }
  return null
}

/** Loopback, private, link-local: not worth a query (and never listed). */
export function isPrivate(ip: string): boolean {
  const v4 = ip.startsWith('::ffff:') ? ip.slice(7) : ip
  if (net.isIPv4(v4)) {
    const [a, b] = v4.split('.').map(Number)
    return a === 10 || a === 127 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 169 && b === 254) || a === 0
  }
  return ip === '::1' || /^f[cd]/i.test(ip) || /^fe80/i.test(ip)
}

/** When each listed client was first delayed, so it is delayed once, not forever. */
export class DnsblDelays {
  private readonly q

  constructor(db: Db) {
    this.q = {
      seen: db.prepare(
        `INSERT INTO dnsbl_delays (ip, zone, first_seen_at, last_seen_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (ip) DO UPDATE SET last_seen_at = excluded.last_seen_at RETURNING first_seen_at`,
      ),
    }
  }

  /** Records this attempt; returns when the client was first seen. */
  firstSeen(ip: string, zone: string, now: number): number {
    return (this.q.seen.get(ip, zone, now, now) as { first_seen_at: number }).first_seen_at
  }
}

export class DnsblChecker {
  private readonly resolver: dns.Resolver
  private readonly cache = new Map<string, { expires: number; codes: string[] | null }>()

  constructor(opts: { server: string | null; timeoutMs: number; tries: number }, private readonly now: () => number = Date.now) {
    this.resolver = new dns.Resolver({ timeout: opts.timeoutMs, tries: opts.tries })
    if (opts.server) this.resolver.setServers([opts.server])
  }

  private async lookup(name: string): Promise<string[] | null> {
    const hit = this.cache.get(name)
    if (hit && hit.expires > this.now()) return hit.codes
    try {
      const answers = await this.resolver.resolve4(name, { ttl: true })
      const ttl = Math.min(MAX_TTL_MS, Math.max(MIN_TTL_MS, Math.min(...answers.map((a) => a.ttl)) * 1000))
      const codes = answers.map((a) => a.address)
      this.remember(name, codes, ttl)
      return codes
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ENOTFOUND' || code === 'ENODATA') {
        this.remember(name, null, NEGATIVE_TTL_MS)
        return null
      }
      throw err
    }
  }

  private remember(name: string, codes: string[] | null, ttlMs: number): void {
    if (this.cache.size > 100_000) this.cache.clear()
    this.cache.set(name, { expires: this.now() + ttlMs, codes })
  }

  async check(ip: string, zones: Zone[]): Promise<DnsblResult> {
    const result: DnsblResult = { listings: [], errors: [] }
    const rev = reverseName(ip.startsWith('::ffff:') ? ip.slice(7) : ip)
    if (!rev) return result
    await Promise.all(
      zones.map(async (z) => {
        try {
          const codes = await this.lookup(`${rev}.${z.zone}`)
          // 127.0.0.0/8 answers are listings; anything else is a list's error signal
          // (Spamhaus answers 127.255.255.x to refused or over-quota resolvers).
          const listed = codes?.filter((c) => c.startsWith('127.') && !c.startsWith('127.255.255.'))
          if (listed?.length) result.listings.push({ ...z, codes: listed })
          else if (codes?.length) result.errors.push({ zone: z.zone, code: `unexpected answer ${codes.join(',')}` })
        } catch (err) {
          result.errors.push({ zone: z.zone, code: (err as NodeJS.ErrnoException).code ?? String(err) })
        }
      }),
    )
    return result
  }
}
