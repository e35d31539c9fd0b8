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
  /** Return code (127.0.0.x) to the symbol of that kind of listing, in place of `symbol`. */
  codes?: Record<string, string>
}

export interface Listing extends Zone {
  /** the answers */
  answers: string[]
  /** the symbols the answers stand for (the zone's, or those mapped from its codes) */
  symbols: string[]
  /** domain lists: the domain that is listed */
  domain?: string
}

export interface DnsblResult {
  listings: Listing[]
  errors: { zone: string; code: string }[]
}

const DOMAIN = /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$/
// Second-level labels under which the registered domain has three labels (example.co.uk).
const SECOND_LEVEL = new Set(['co', 'com', 'net', 'org', 'gov', 'edu', 'ac', 'or', 'ne', 'go', 'gv', 'mil', 'nom', 'sch', 'ltd', 'plc'])
// Names sold as if they were TLDs (the Public Suffix List's CentralNic entries): spam.ru.com
// is registered by whoever sends from it, not by the owner of ru.com.
const SOLD_AS_TLD = new Set(['ru.com', 'sa.com', 'us.com', 'uk.com', 'eu.com', 'cn.com', 'de.com', 'br.com', 'za.com', 'jpn.com', 'gb.net', 'uk.net', 'in.net', 'us.org', 'co.com', 'com.de'])

/**
 * The domain a domain blocklist is asked about for a host: its registered domain, by the
 * usual rule (two labels, three under a country's second level such as co.uk or a name sold
 * as a TLD such as ru.com); null for an
 * IP literal or a name that is not a domain.
 */
export function registeredDomain(host: string): string | null {
  const h = host.trim().toLowerCase().replace(/\.$/, '')
  if (net.isIP(h.replace(/^\[|\]$/g, '')) || !DOMAIN.test(h)) return null
  const labels = h.split('.')
  if (labels.length <= 2) return h
  const n = (labels.at(-1)!.length === 2 && SECOND_LEVEL.has(labels.at(-2)!)) || SOLD_AS_TLD.has(labels.slice(-2).join('.')) ? 3 : 2
  return labels.slice(-n).join('.')
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

  /** One query: a listing, an error, or nothing (not listed). */
  private async ask(name: string, z: Zone, result: DnsblResult, domain?: string): Promise<void> {
    try {
      const answers = await this.lookup(`${name}.${z.zone}`)
      // 127.0.0.0/8 answers are listings; anything else, and 127.255.255.x (Spamhaus's answer
      // to refused or over-quota resolvers) or 127.0.1.255 (DBL: query not allowed), is an error.
      const listed = answers?.filter((c) => c.startsWith('127.') && !c.startsWith('127.255.255.') && c !== '127.0.1.255')
      if (listed?.length) {
        const symbols = [...new Set(listed.map((c) => z.codes?.[c] ?? z.symbol))]
        result.listings.push({ ...z, answers: listed, symbols, domain })
      } else if (answers?.length) result.errors.push({ zone: z.zone, code: `unexpected answer ${answers.join(',')}` })
    } catch (err) {
      result.errors.push({ zone: z.zone, code: (err as NodeJS.ErrnoException).code ?? String(err) })
    }
  }

  /** The client's address on IP lists. */
  async check(ip: string, zones: Zone[]): Promise<DnsblResult> {
    const result: DnsblResult = { listings: [], errors: [] }
    const rev = reverseName(ip.startsWith('::ffff:') ? ip.slice(7) : ip)
    if (!rev) return result
    await Promise.all(zones.map((z) => this.ask(rev, z, result)))
    return result
  }

  /** Domains (the sender's, those of URLs in the body) on domain lists. */
  async checkDomains(domains: string[], zones: Zone[]): Promise<DnsblResult> {
    const result: DnsblResult = { listings: [], errors: [] }
    await Promise.all(domains.flatMap((d) => zones.map((z) => this.ask(d, z, result, d))))
    return result
  }
}
