/*
 * Watching the appliance's own outbound addresses on public DNS blocklists. A new listing is
 * recorded, the admin alerted, and the sender who sent the most outbound spam in the hours
 * before it is held (its mail stays queued): the likely cause stops at once, before more of
 * the appliance's mail bounces. A delisting is recorded too.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { Db } from '../db/database'
import { DnsblChecker, isPrivate } from './dnsbl'
import { OutboundSenders } from './outbound-senders'
import { StoredSettings } from './stored-settings'
import { TenantError } from './tenants'
import net from 'node:net'

const SHIPPED_ZONES = path.resolve(__dirname, '../../../appliance/rbl-watch-zones.txt')
const HOUR_MS = 3_600_000
const CONCURRENCY = 16
/** How far back to look for the sender who caused a listing. */
const BLAME_WINDOW_HOURS = 24

export interface WatchResult {
  ips: string[]
  zones: number
  listed: { ip: string; zone: string; codes: string[]; isNew: boolean }[]
  delisted: { ip: string; zone: string }[]
  errors: number
  held: { org_id: number; address: string } | null
}

/** Zones one a line (# starts a comment), as the shipped file, `moat rbl zones --file` and the Outbound page give them. */
export function parseZones(text: string, where = 'the list'): string[] {
  const zones = text
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim().toLowerCase())
    .filter(Boolean)
  for (const z of zones) if (!/^([a-z0-9-]+\.)+[a-z0-9-]+$/.test(z)) throw new TenantError(`"${z}" in ${where} is not a DNS zone`)
  return [...new Set(zones)]
}

export function readZoneFile(file: string): string[] {
  return parseZones(fs.readFileSync(file, 'utf8'), file)
}

export class RblWatch {
  private readonly q
  private readonly settings: StoredSettings

  constructor(
    private readonly db: Db,
    private readonly dnsServer: string | null,
  ) {
    this.settings = new StoredSettings(db)
    this.q = {
      open: db.prepare(`SELECT * FROM rbl_listings WHERE delisted_at IS NULL`),
      insert: db.prepare(`INSERT INTO rbl_listings (ip, zone, codes, listed_at, last_seen_at) VALUES (?, ?, ?, ?, ?)`),
      seen: db.prepare(`UPDATE rbl_listings SET last_seen_at = ?, codes = ? WHERE id = ?`),
      delist: db.prepare(`UPDATE rbl_listings SET delisted_at = ? WHERE id = ?`),
      alert: db.prepare(`INSERT INTO alerts (org_id, kind, message, created_at) VALUES (NULL, ?, ?, ?)`),
      check: db.prepare(`INSERT INTO rbl_checks (at, ips, zones, listed, errors, ms) VALUES (?, ?, ?, ?, ?, ?)`),
      lastCheck: db.prepare(`SELECT * FROM rbl_checks ORDER BY id DESC LIMIT 1`),
      history: db.prepare(`SELECT * FROM rbl_listings ORDER BY listed_at DESC LIMIT ?`),
      worstSender: db.prepare(
        `SELECT org_id, address, sum(spam) AS spam, sum(messages) AS messages FROM sender_counts
         WHERE hour >= ? AND spam > 0 GROUP BY org_id, address ORDER BY spam DESC, messages DESC LIMIT 1`,
      ),
    }
  }

  /** The addresses to watch: set by the admin, else this machine's public addresses. */
  ips(): string[] {
    const set = this.settings.get<string[] | null>('rbl_watch_ips', null)
    if (set) return set
    const found = new Set<string>()
    for (const list of Object.values(os.networkInterfaces())) {
      for (const a of list ?? []) if (!a.internal && !isPrivate(a.address) && !/^fe80/i.test(a.address)) found.add(a.address)
    }
    return [...found]
  }

  setIps(ips: string[] | null): void {
    if (ips === null) return this.settings.remove('rbl_watch_ips')
    for (const ip of ips) if (!net.isIP(ip)) throw new TenantError(`"${ip}" is not an IP address`)
    this.settings.set('rbl_watch_ips', [...new Set(ips)])
  }

  /** Whether the admin chose the addresses (else this machine's public ones are found). */
  ipsChosen(): boolean {
    return this.settings.get<string[] | null>('rbl_watch_ips', null) !== null
  }

  /** Whether the admin replaced the shipped list of zones. */
  zonesChosen(): boolean {
    return this.settings.get<string[] | null>('rbl_watch_zones', null) !== null
  }

  zones(): string[] {
    return this.settings.get<string[] | null>('rbl_watch_zones', null) ?? readZoneFile(SHIPPED_ZONES)
  }

  setZones(zones: string[] | null): void {
    if (zones === null) return this.settings.remove('rbl_watch_zones')
    if (!zones.length) throw new TenantError('an empty zone list would watch nothing')
    this.settings.set('rbl_watch_zones', zones)
  }

  async run(now = Date.now()): Promise<WatchResult> {
    const started = Date.now()
    const ips = this.ips()
    const zones = this.zones()
    const checker = new DnsblChecker({ server: this.dnsServer, timeoutMs: 3000, tries: 2 })
    const answers: { ip: string; zone: string; codes: string[] | null; error: boolean }[] = []
    const work = ips.flatMap((ip) => zones.map((zone) => ({ ip, zone })))
    const worker = async () => {
      for (let w = work.shift(); w; w = work.shift()) {
        const r = await checker.check(w.ip, [{ zone: w.zone, symbol: '', delay: false }])
        answers.push({ ip: w.ip, zone: w.zone, codes: r.listings[0]?.answers ?? null, error: r.errors.length > 0 })
      }
    }
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, work.length) }, worker))

    const result: WatchResult = { ips, zones: zones.length, listed: [], delisted: [], errors: 0, held: null }
    this.db.transaction(() => {
      const open = new Map((this.q.open.all() as { id: number; ip: string; zone: string }[]).map((r) => [`${r.ip} ${r.zone}`, r]))
      for (const a of answers) {
        if (a.error) {
          result.errors++
          continue // unknown: neither listed nor delisted
        }
        const row = open.get(`${a.ip} ${a.zone}`)
        if (a.codes) {
          if (row) this.q.seen.run(now, a.codes.join(','), row.id)
          else this.q.insert.run(a.ip, a.zone, a.codes.join(','), now, now)
          result.listed.push({ ip: a.ip, zone: a.zone, codes: a.codes, isNew: !row })
        } else if (row) {
          this.q.delist.run(now, row.id)
          result.delisted.push({ ip: a.ip, zone: a.zone })
          this.q.alert.run('rbl-delisted', `Our address ${a.ip} is no longer listed on ${a.zone}.`, now)
        }
      }
      const fresh = result.listed.filter((l) => l.isNew)
      if (fresh.length) {
        const worst = this.q.worstSender.get(Math.floor(now / HOUR_MS) - BLAME_WINDOW_HOURS) as { org_id: number; address: string; spam: number } | undefined
        const where = fresh.map((l) => `${l.ip} on ${l.zone} (${l.codes.join(',')})`).join(', ')
        if (worst) {
          new OutboundSenders(this.db).hold(worst.org_id, worst.address, `the appliance was listed (${where}); this sender sent the most outbound spam (${worst.spam}) in the ${BLAME_WINDOW_HOURS} hours before`, now)
          result.held = { org_id: worst.org_id, address: worst.address }
        }
        this.q.alert.run('rbl-listed', `Our outbound address is listed: ${where}.${worst ? ` Held sender ${worst.address}, who sent the most outbound spam before it.` : ''}`, now)
      }
      this.q.check.run(now, ips.length, zones.length, result.listed.length, result.errors, Date.now() - started)
    })()
    return result
  }

  status(): { ips: string[]; zones: number; last_check: Record<string, unknown> | null; listed: Record<string, unknown>[]; history: Record<string, unknown>[] } {
    return {
      ips: this.ips(),
      zones: this.zones().length,
      last_check: (this.q.lastCheck.get() as Record<string, unknown>) ?? null,
      listed: this.q.open.all() as Record<string, unknown>[],
      history: this.q.history.all(50) as Record<string, unknown>[],
    }
  }
}
