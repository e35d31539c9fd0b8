/*
 * Allow and block lists of senders: an organisation's, and each user's own. A pattern is an
 * address (bob@example.net) or a domain with its subdomains (@example.net). The user's own
 * entries come before the organisation's; at one level, block beats allow.
 *
 * Allow-listing is what spammers forge first, so an allow entry is honoured only for mail
 * that did not fail sender authentication, and never lets a virus or a dangerous attachment
 * through (see plugins/moat-lists).
 */
import type { Db } from '../db/database'
import { TenantError } from './tenants'
import { addressParser } from 'postal-mime'

export type ListKind = 'allow' | 'block'

export interface ListEntry {
  id: number
  org_id: number
  org: string
  user_id: number | null
  user: string | null
  kind: ListKind
  pattern: string
  created_at: number
}

export interface ListMatch {
  kind: ListKind
  pattern: string
  level: 'user' | 'organisation'
}

const ADDRESS = /^[^@\s"]+@([a-z0-9-]+\.)+[a-z0-9-]+$/
const DOMAIN = /^@([a-z0-9-]+\.)+[a-z0-9-]+$/

export function normalisePattern(p: string): string {
  const v = p.trim().toLowerCase()
  const pattern = /^[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(v) ? `@${v}` : v
  if (!ADDRESS.test(pattern) && !DOMAIN.test(pattern)) throw new TenantError(`"${p}" is not an address or @domain`)
  return pattern
}

/** Everything a sender address matches: itself, then its domain and each parent domain. */
function candidates(address: string): string[] {
  const a = address.toLowerCase()
  const at = a.lastIndexOf('@')
  if (at < 0) return []
  const labels = a.slice(at + 1).split('.')
  const out = [a]
  for (let i = 0; i < labels.length - 1; i++) out.push(`@${labels.slice(i).join('.')}`)
  return out
}

/**
 * The address to allow or block for a held message: the one its From header names (the first
 * mailbox), else the envelope sender. From the stored header, without reading the message.
 */
export function senderAddress(fromHeader: string | null, mailFrom: string): string {
  try {
    const first = fromHeader ? addressParser(fromHeader).find((a) => a.address) : undefined
    if (first?.address) return first.address.toLowerCase()
  } catch {
    // an unreadable header: the envelope sender it is
  }
  return (mailFrom || '').toLowerCase()
}

/** An entry with its organisation's name and its user's address. */
const ENTRY = `SELECT l.*, o.name AS org, u.email AS user FROM sender_lists l JOIN organisations o ON o.id = l.org_id
  LEFT JOIN users u ON u.id = l.user_id`

export class SenderLists {
  private readonly q

  constructor(private readonly db: Db) {
    this.q = {
      insert: db.prepare(`INSERT OR IGNORE INTO sender_lists (org_id, user_id, kind, pattern, created_at) VALUES (?, ?, ?, ?, ?)`),
      remove: db.prepare(`DELETE FROM sender_lists WHERE id = ?`),
      // One organisation's entries, or (@org null) everyone's: an API call about one customer
      // does not read the whole appliance's lists.
      list: db.prepare(`${ENTRY} WHERE @org IS NULL OR l.org_id = @org ORDER BY o.name, u.email, l.kind, l.pattern`),
      one: db.prepare(`${ENTRY} WHERE l.id = ?`),
      entry: db.prepare(`SELECT id FROM sender_lists WHERE org_id = ? AND coalesce(user_id, 0) = coalesce(?, 0) AND kind = ? AND pattern = ?`),
    }
  }

  add(orgId: number, userId: number | null, kind: ListKind, pattern: string): ListEntry {
    if (kind !== 'allow' && kind !== 'block') throw new TenantError('a list is "allow" or "block"')
    const p = normalisePattern(pattern)
    this.q.insert.run(orgId, userId, kind, p, Date.now())
    return this.get((this.q.entry.get(orgId, userId, kind, p) as { id: number }).id)!
  }

  /** Adds every entry missing, in one transaction; those already there are left as they are. */
  addMany(orgId: number, entries: { userId: number | null; kind: ListKind; pattern: string }[]): { created: number; unchanged: number } {
    const now = Date.now()
    return this.db.transaction(() => {
      let created = 0
      for (const e of entries) created += this.q.insert.run(orgId, e.userId, e.kind, normalisePattern(e.pattern), now).changes
      return { created, unchanged: entries.length - created }
    })()
  }

  get(id: number): ListEntry | undefined {
    return this.q.one.get(id) as ListEntry | undefined
  }

  remove(id: number): void {
    if (!this.q.remove.run(id).changes) throw new TenantError(`no list entry ${id}`)
  }

  list(orgId: number | null = null): ListEntry[] {
    return this.q.list.all({ org: orgId }) as ListEntry[]
  }

  /** The entry that decides for mail from these senders to this organisation (and user). */
  match(orgId: number, userId: number | null, senders: string[]): ListMatch | null {
    const keys = [...new Set(senders.flatMap(candidates))]
    if (!keys.length) return null
    const rows = this.db
      .prepare(`SELECT user_id, kind, pattern FROM sender_lists WHERE org_id = ? AND pattern IN (${keys.map(() => '?').join(',')})`)
      .all(orgId, ...keys) as { user_id: number | null; kind: ListKind; pattern: string }[]
    for (const level of ['user', 'organisation'] as const) {
      const here = rows.filter((r) => (level === 'user' ? r.user_id !== null && r.user_id === userId : r.user_id === null))
      const hit = here.find((r) => r.kind === 'block') ?? here.find((r) => r.kind === 'allow')
      if (hit) return { kind: hit.kind, pattern: hit.pattern, level }
    }
    return null
  }
}
