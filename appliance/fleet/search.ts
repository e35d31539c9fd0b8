/*
 * Searching the fleet, in SQL so that a page of 100 hosts out of 10,000 costs a page, not
 * the fleet. A query is words and filters, all of which must hold:
 *   status:offline  kind:windows  org:acme      what the host is
 *   disk>90  cpu>=80  mem<20                    its newest metrics (%)
 *   version<0.2                                 Moat or agent version, compared as versions
 *   software:nginx  software:openssl<3.0.11     an installed package (from the newest inventory)
 *   anything else                               in its name, organisation, kind, OS or version
 */
import type { Db } from '../db/database'
import { whereIn } from '../db/sql'
import { FleetError } from './errors'

export interface Filter {
  sql: string
  args: unknown[]
}

const COMPARE = /^(disk|cpu|mem|version)(>=|<=|>|<|=)(.+)$/
const METRIC_COLUMN = { disk: 'h.disk_use', cpu: 'h.cpu', mem: 'h.mem_pct' } as const

/** A version as a key that sorts as versions do: "0.10.2" after "0.9", numbers padded. */
export function versionKey(v: string | null): string | null {
  if (v === null || v === undefined) return null
  return String(v)
    .split(/[.+~-]/)
    .map((p) => (/^\d+$/.test(p) ? p.padStart(10, '0') : p))
    .join('.')
}

/** Registers versionKey as an SQL function on this connection (once). */
export function registerVersionKey(db: Db): void {
  const marked = db as Db & { moatVersionKey?: boolean }
  if (marked.moatVersionKey) return
  db.function('moat_version_key', { deterministic: true }, (v: unknown) => versionKey(v === null ? null : String(v)))
  marked.moatVersionKey = true
}

/** The status rules of console.ts (LATE_MS, OFFLINE_MS) as SQL over `now`. */
function statusSql(status: string, now: number, lateMs: number, offlineMs: number): Filter {
  const seen = 'coalesce(h.last_seen_at, h.enrolled_at)'
  switch (status) {
    case 'revoked': return { sql: 'h.revoked_at IS NOT NULL', args: [] }
    case 'online': return { sql: `h.revoked_at IS NULL AND ${seen} > ?`, args: [now - lateMs] }
    case 'late': return { sql: `h.revoked_at IS NULL AND ${seen} <= ? AND ${seen} > ?`, args: [now - lateMs, now - offlineMs] }
    case 'offline': return { sql: `h.revoked_at IS NULL AND ${seen} <= ?`, args: [now - offlineMs] }
    default: throw new FleetError(`status: is one of online, late, offline, revoked`)
  }
}

/** The WHERE clause of a query (over fleet_hosts h joined to organisations o). */
export function parseQuery(q: string, now: number, lateMs: number, offlineMs: number): Filter {
  const parts: Filter[] = []
  for (const word of q.trim().toLowerCase().split(/\s+/).filter(Boolean).slice(0, 12)) {
    const colon = /^(status|kind|org|software):(.+)$/.exec(word)
    const cmp = COMPARE.exec(word)
    if (colon) {
      const [, key, value] = colon
      if (key === 'status') parts.push(statusSql(value, now, lateMs, offlineMs))
      else if (key === 'kind') parts.push({ sql: 'h.kind = ?', args: [value] })
      else if (key === 'org') parts.push({ sql: 'lower(o.name) = ?', args: [value] })
      else {
        const sw = /^([^<>=]+)(?:(>=|<=|>|<|=)(.+))?$/.exec(value)!
        const versionCmp = sw[2] ? ` AND moat_version_key(s.version) ${sw[2]} moat_version_key(?)` : ''
        parts.push({ sql: `EXISTS (SELECT 1 FROM fleet_software s WHERE s.host_id = h.id AND s.name = ?${versionCmp})`, args: sw[2] ? [sw[1], sw[3]] : [sw[1]] })
      }
    } else if (cmp) {
      const [, key, op, value] = cmp
      if (key === 'version') parts.push({ sql: `moat_version_key(h.version) ${op} moat_version_key(?)`, args: [value] })
      else {
        const n = Number(value.replace(/%$/, ''))
        if (!Number.isFinite(n)) throw new FleetError(`${key}${op} needs a number`)
        parts.push({ sql: `${METRIC_COLUMN[key as keyof typeof METRIC_COLUMN]} ${op} ?`, args: [n] })
      }
    } else {
      parts.push({ sql: `instr(lower(h.name || ' ' || o.name || ' ' || h.kind || ' ' || coalesce(h.os, '') || ' ' || coalesce(h.version, '')), ?) > 0`, args: [word] })
    }
  }
  return parts.length ? { sql: parts.map((p) => `(${p.sql})`).join(' AND '), args: parts.flatMap((p) => p.args) } : { sql: '1', args: [] }
}

/** The caller's organisations as a filter (null: every one). */
export function scopeFilter(orgIds: number[] | null): Filter {
  return orgIds ? whereIn('h.org_id', orgIds) : { sql: '1', args: [] }
}
