/*
 * Users from the directory: each organisation may name an LDAP or Active Directory server,
 * and on a schedule (jobs/scheduler.ts) its users become Moat's recipients.
 *
 * What is read, as an Exchange-style directory has it:
 * - the primary address: proxyAddresses' "SMTP:" value (upper case marks the primary), else mail;
 * - aliases: every other "smtp:" value of proxyAddresses, and mail when it is not the primary;
 * - a disabled account (userAccountControl bit 2, ACCOUNTDISABLE) counts as gone.
 * The bit is tested here rather than with AD's bitwise matching rule in the filter, which
 * other LDAP servers do not have. Only addresses in the organisation's own domains are taken.
 *
 * What is changed: users and aliases the sync made (from_directory = 1) are added, renamed
 * and removed to match; users and aliases an admin made by hand are never removed, and a
 * hand-made user the directory also lists is taken over. A search that finds nobody changes
 * nothing (a wrong base DN or a lost permission must not empty an organisation), and every
 * run is one transaction: the recipients are the old set or the new one, never half.
 */
import type { Client as LdapClient } from 'ldapts'
import { z } from 'zod'
import type { Db } from '../db/database'
import { normaliseAddress } from '../services/tenants'

export class DirectoryError extends Error {}

export const AD_FILTER = '(&(objectClass=user)(|(mail=*)(proxyAddresses=*)))'
const ACCOUNTDISABLE = 2

export const directorySourceSchema = z.object({
  url: z.string().regex(/^ldaps?:\/\/[^\s/]+\/?$/, 'ldap://HOST[:PORT] or ldaps://HOST[:PORT]'),
  bindDn: z.string().min(1, 'a bind DN'),
  bindPassword: z.string().min(1, 'a bind password'),
  baseDn: z.string().min(1, 'a base DN'),
  filter: z.string().regex(/^\(.*\)$/s, 'an LDAP filter in parentheses'),
  everyMinutes: z.number().int().min(5).max(10080),
})
export type DirectorySource = z.infer<typeof directorySourceSchema>

export interface DirectoryPerson {
  primary: string
  displayName: string | null
  aliases: string[]
  disabled: boolean
}

export interface SyncResult {
  found: number
  disabled: number
  added: string[]
  removed: string[]
  aliasesAdded: string[]
  aliasesRemoved: string[]
  /** addresses the directory lists that Moat could not take, and why */
  skipped: { address: string; why: string }[]
}

const first = (v: unknown): string | null => (Array.isArray(v) ? (v.length ? String(v[0]) : null) : v == null || v === '' ? null : String(v))
const all = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : v == null ? [] : [String(v)])

/** One directory entry as Moat reads it (null: it has no address at all). */
export function readEntry(e: Record<string, unknown>): DirectoryPerson | null {
  const proxies = all(e.proxyAddresses)
  const primaryProxy = proxies.find((p) => p.startsWith('SMTP:'))?.slice(5)
  const mail = first(e.mail)
  const primary = (primaryProxy ?? mail)?.trim().toLowerCase()
  if (!primary) return null
  const aliases = new Set<string>()
  for (const p of proxies) if (/^smtp:/i.test(p)) aliases.add(p.slice(5).trim().toLowerCase())
  if (mail) aliases.add(mail.trim().toLowerCase())
  aliases.delete(primary)
  const uac = Number(first(e.userAccountControl) ?? 0)
  return { primary, displayName: first(e.displayName) ?? first(e.cn), aliases: [...aliases], disabled: (uac & ACCOUNTDISABLE) !== 0 }
}

/** Reads every matching entry (paged: Active Directory returns at most 1,000 a page). */
export async function readDirectory(src: DirectorySource, timeoutMs = 15_000): Promise<DirectoryPerson[]> {
  // Loaded when first used, not with every `moat` command.
  const { Client } = require('ldapts') as { Client: typeof LdapClient }
  const client = new Client({ url: src.url, timeout: timeoutMs, connectTimeout: timeoutMs })
  try {
    try {
      await client.bind(src.bindDn, src.bindPassword)
    } catch (err) {
      const msg = (err as Error).message
      throw new DirectoryError(/invalid credentials/i.test(msg) || (err as { code?: number }).code === 49 ? `${src.url} refused the bind as ${src.bindDn}: check the DN and password` : `cannot reach ${src.url}: ${msg}`)
    }
    let entries
    try {
      ;({ searchEntries: entries } = await client.search(src.baseDn, {
        scope: 'sub',
        filter: src.filter,
        attributes: ['mail', 'proxyAddresses', 'displayName', 'cn', 'userAccountControl'],
        paged: { pageSize: 500 },
      }))
    } catch (err) {
      throw new DirectoryError(`the search under ${src.baseDn} failed: ${(err as Error).message}`)
    }
    return entries.map((e) => readEntry(e as Record<string, unknown>)).filter((p): p is DirectoryPerson => p !== null)
  } finally {
    await client.unbind().catch(() => undefined)
  }
}

export class DirectorySync {
  private readonly q

  constructor(private readonly db: Db) {
    this.q = {
      source: db.prepare(`SELECT * FROM directory_sources WHERE org_id = ?`),
      sources: db.prepare(`SELECT org_id FROM directory_sources`).pluck(),
      upsert: db.prepare(
        `INSERT INTO directory_sources (org_id, url, bind_dn, bind_password, base_dn, filter, every_minutes) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (org_id) DO UPDATE SET url = excluded.url, bind_dn = excluded.bind_dn, bind_password = excluded.bind_password,
           base_dn = excluded.base_dn, filter = excluded.filter, every_minutes = excluded.every_minutes`,
      ),
      remove: db.prepare(`DELETE FROM directory_sources WHERE org_id = ?`),
      domains: db.prepare(`SELECT id, name FROM domains WHERE org_id = ?`),
      users: db.prepare(`SELECT id, email, display_name, from_directory FROM users WHERE org_id = ?`),
      aliases: db.prepare(`SELECT a.address, a.user_id, a.from_directory FROM aliases a WHERE a.org_id = ?`),
      userAnywhere: db.prepare(`SELECT org_id FROM users WHERE email = ?`).pluck(),
      aliasAnywhere: db.prepare(`SELECT org_id FROM aliases WHERE address = ?`).pluck(),
      addUser: db.prepare(`INSERT INTO users (org_id, domain_id, email, display_name, role, created_at, from_directory) VALUES (?, ?, ?, ?, 'user', ?, 1)`),
      takeOver: db.prepare(`UPDATE users SET from_directory = 1, display_name = coalesce(?, display_name) WHERE id = ?`),
      rename: db.prepare(`UPDATE users SET display_name = ? WHERE id = ?`),
      deleteUser: db.prepare(`DELETE FROM users WHERE id = ?`),
      addAlias: db.prepare(`INSERT INTO aliases (org_id, domain_id, address, user_id, created_at, from_directory) VALUES (?, ?, ?, ?, ?, 1)`),
      deleteAlias: db.prepare(`DELETE FROM aliases WHERE address = ? AND org_id = ?`),
      attempt: db.prepare(`UPDATE directory_sources SET last_attempt_at = ?, last_error = ? WHERE org_id = ?`),
      ok: db.prepare(`UPDATE directory_sources SET last_attempt_at = ?, last_ok_at = ?, last_error = NULL, last_result = ? WHERE org_id = ?`),
      alert: db.prepare(`INSERT INTO alerts (org_id, kind, message, created_at) VALUES (?, 'directory-sync', ?, ?)`),
    }
  }

  source(orgId: number): (DirectorySource & { lastAttemptAt: number | null; lastOkAt: number | null; lastResult: SyncResult | null; lastError: string | null }) | null {
    const r = this.q.source.get(orgId) as Record<string, string | number | null> | undefined
    if (!r) return null
    return {
      url: r.url as string, bindDn: r.bind_dn as string, bindPassword: r.bind_password as string, baseDn: r.base_dn as string, filter: r.filter as string,
      everyMinutes: r.every_minutes as number, lastAttemptAt: r.last_attempt_at as number | null, lastOkAt: r.last_ok_at as number | null,
      lastResult: r.last_result ? JSON.parse(r.last_result as string) : null, lastError: r.last_error as string | null,
    }
  }

  setSource(orgId: number, src: DirectorySource): void {
    const s = directorySourceSchema.parse(src)
    this.q.upsert.run(orgId, s.url, s.bindDn, s.bindPassword, s.baseDn, s.filter, s.everyMinutes)
  }

  removeSource(orgId: number): boolean {
    return this.q.remove.run(orgId).changes > 0
  }

  /** What a sync would change, without changing it (apply: false), or the change made. */
  async sync(orgId: number, opts: { apply?: boolean; now?: number } = {}): Promise<SyncResult> {
    const src = this.source(orgId)
    if (!src) throw new DirectoryError('this organisation has no directory set')
    const now = opts.now ?? Date.now()
    let people: DirectoryPerson[]
    try {
      people = await readDirectory(src)
      if (!people.length) throw new DirectoryError(`the search under ${src.baseDn} found nobody with an address: nothing was changed (check the base DN, the filter and the bind account's rights)`)
    } catch (err) {
      if (opts.apply !== false) this.failed(orgId, src.lastError, (err as Error).message, now)
      throw err
    }
    const result = this.db.transaction(() => this.reconcile(orgId, people, opts.apply !== false, now))()
    if (opts.apply !== false) this.q.ok.run(now, now, JSON.stringify(result), orgId)
    return result
  }

  private failed(orgId: number, before: string | null, error: string, now: number): void {
    this.q.attempt.run(now, error, orgId)
    // One alert for a run of failures, not one per scheduled attempt.
    if (!before) this.q.alert.run(orgId, `The directory sync failed: ${error}`, now)
  }

  private reconcile(orgId: number, people: DirectoryPerson[], apply: boolean, now: number): SyncResult {
    const domains = new Map((this.q.domains.all(orgId) as { id: number; name: string }[]).map((d) => [d.name, d.id]))
    const r: SyncResult = { found: people.length, disabled: 0, added: [], removed: [], aliasesAdded: [], aliasesRemoved: [], skipped: [] }
    const domainOf = (address: string): number | null => {
      try {
        return domains.get(normaliseAddress(address).domain) ?? null
      } catch {
        return null
      }
    }
    const users = new Map((this.q.users.all(orgId) as { id: number; email: string; display_name: string | null; from_directory: number }[]).map((u) => [u.email, u]))
    const wanted = new Map<string, DirectoryPerson>()
    for (const p of people) {
      if (p.disabled) {
        r.disabled++
        continue
      }
      if (domainOf(p.primary) === null) {
        r.skipped.push({ address: p.primary, why: "not in this organisation's domains" })
        continue
      }
      wanted.set(p.primary, p)
    }
    // Users: add, take over, rename; remove the directory's own that are gone or disabled.
    const ids = new Map<string, number>()
    for (const [email, p] of wanted) {
      const u = users.get(email)
      if (u) {
        ids.set(email, u.id)
        if (apply && !u.from_directory) this.q.takeOver.run(p.displayName, u.id)
        else if (apply && p.displayName && p.displayName !== u.display_name) this.q.rename.run(p.displayName, u.id)
        continue
      }
      if (this.q.userAnywhere.get(email) !== undefined || this.q.aliasAnywhere.get(email) !== undefined) {
        r.skipped.push({ address: email, why: 'already a user or alias elsewhere' })
        continue
      }
      r.added.push(email)
      if (apply) ids.set(email, Number(this.q.addUser.run(orgId, domainOf(email), email, p.displayName, now).lastInsertRowid))
    }
    for (const u of users.values()) {
      if (u.from_directory && !wanted.has(u.email)) {
        r.removed.push(u.email)
        if (apply) this.q.deleteUser.run(u.id)
      }
    }
    // Aliases, to the users the directory names.
    const aliases = new Map((this.q.aliases.all(orgId) as { address: string; user_id: number; from_directory: number }[]).map((a) => [a.address, a]))
    const wantedAliases = new Map<string, string>()
    for (const [email, p] of wanted) for (const a of p.aliases) if (!wanted.has(a)) wantedAliases.set(a, email)
    for (const [address, owner] of wantedAliases) {
      const have = aliases.get(address)
      const ownerId = ids.get(owner)
      if (have && have.user_id === ownerId) continue
      if (domainOf(address) === null) {
        r.skipped.push({ address, why: "not in this organisation's domains" })
        continue
      }
      if (have && !have.from_directory) {
        r.skipped.push({ address, why: 'an alias made by hand points elsewhere' })
        continue
      }
      if (!have && (this.q.userAnywhere.get(address) !== undefined || this.q.aliasAnywhere.get(address) !== undefined)) {
        r.skipped.push({ address, why: 'already a user or alias elsewhere' })
        continue
      }
      r.aliasesAdded.push(address)
      if (apply) {
        if (have) this.q.deleteAlias.run(address, orgId)
        if (ownerId !== undefined) this.q.addAlias.run(orgId, domainOf(address), address, ownerId, now)
      }
    }
    for (const a of aliases.values()) {
      if (a.from_directory && !wantedAliases.has(a.address)) {
        r.aliasesRemoved.push(a.address)
        if (apply) this.q.deleteAlias.run(a.address, orgId)
      }
    }
    return r
  }

  /** The job: every source whose interval has passed. */
  async syncDue(now = Date.now(), log: (msg: string) => void = () => undefined): Promise<{ synced: number; failed: number } | null> {
    let synced = 0
    let failed = 0
    for (const orgId of this.q.sources.all() as number[]) {
      const s = this.source(orgId)
      if (!s || (s.lastAttemptAt !== null && now - s.lastAttemptAt < s.everyMinutes * 60_000)) continue
      try {
        const r = await this.sync(orgId, { now })
        synced++
        if (r.added.length || r.removed.length || r.aliasesAdded.length || r.aliasesRemoved.length) {
          log(`directory sync of organisation ${orgId}: +${r.added.length} -${r.removed.length} users, +${r.aliasesAdded.length} -${r.aliasesRemoved.length} aliases`)
        }
      } catch (err) {
        failed++
        log(`directory sync of organisation ${orgId} failed: ${(err as Error).message}`)
      }
    }
    return synced || failed ? { synced, failed } : null
  }
}
