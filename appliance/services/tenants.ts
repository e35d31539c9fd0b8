/*
 * Organisations, domains, users and aliases: the provisioning model every other part reads.
 *
 * Trusts: nothing from callers; names and addresses are validated and lower-cased here, so
 * the SMTP path can compare with plain equality. Errors are thrown as TenantError with a
 * message fit to show an operator.
 */
import type { Db } from '../db/database'

export class TenantError extends Error {}

/** The MSP every appliance starts with (migration 1). */
export const LOCAL_MSP = 1

export interface Msp {
  id: number
  name: string
  created_at: number
}

export interface Organisation {
  id: number
  msp_id: number
  name: string
  spam_threshold: number
  surespam_threshold: number
  max_message_bytes: number
  archive_retention_days: number
  quarantine_retention_days: number
  suspended_at: number | null
  backscatter_action: BackscatterAction
  outbound_hourly_limit: number
  outbound_spam_limit: number
  allowlist_skips_rbl_delay: number
  /** 1: the users' outbound mail teaches ham fingerprints (learning/). */
  learn_outbound: number
  /** 1: what this organisation's users taught is shared with the MSP's fleet. */
  share_learning: number
  virus_action: VirusAction
  attachment_action: AttachmentAction
  dmarc_action: DmarcAction
  created_at: number
}

export type BackscatterAction = 'quarantine' | 'reject' | 'tag' | 'off'
export const BACKSCATTER_ACTIONS: readonly BackscatterAction[] = ['quarantine', 'reject', 'tag', 'off']
/** Infected mail: refused at DATA (554), or kept in the quarantine as a virus. */
export type VirusAction = 'reject' | 'quarantine'
export const VIRUS_ACTIONS: readonly VirusAction[] = ['reject', 'quarantine']
/** Dangerous attachments: removed and the rest delivered, the whole message quarantined, or refused. */
export type AttachmentAction = 'strip' | 'quarantine' | 'reject'
export const ATTACHMENT_ACTIONS: readonly AttachmentAction[] = ['strip', 'quarantine', 'reject']
/** A sender domain's DMARC policy on failure: honoured (p=reject refused, p=quarantine quarantined), or only scored. */
export type DmarcAction = 'honour' | 'score'
export const DMARC_ACTIONS: readonly DmarcAction[] = ['honour', 'score']

export interface Domain {
  id: number
  org_id: number
  name: string
  deliver_host: string
  deliver_port: number
  tag_mode: number
  catch_all: number
  /** 1: recipients Moat does not know are asked of the customer's server (smtp/callout.ts) */
  verify_recipients: number
  dkim_selector: string | null
  dkim_private_key: string | null
  created_at: number
}

export interface User {
  id: number
  org_id: number
  domain_id: number
  email: string
  display_name: string | null
  role: 'user' | 'org_admin'
  created_at: number
}

export interface Alias {
  id: number
  org_id: number
  domain_id: number
  address: string
  user_id: number
  target: string
}

const ORG_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/
const DOMAIN_NAME = /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$/
// Dot-atom local parts only: quoted local parts and source routes are relay tricks, not mailboxes.
const LOCAL_PART = /^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/

export function normaliseAddress(address: string): { email: string; local: string; domain: string } {
  const email = address.trim().toLowerCase()
  const at = email.lastIndexOf('@')
  if (at < 1 || at === email.length - 1) throw new TenantError(`"${address}" is not an e-mail address`)
  const local = email.slice(0, at)
  const domain = email.slice(at + 1)
  if (local.length > 64 || !LOCAL_PART.test(local)) throw new TenantError(`"${address}" has an invalid local part`)
  if (!DOMAIN_NAME.test(domain)) throw new TenantError(`"${address}" has an invalid domain`)
  return { email, local, domain }
}

export function parseHostPort(value: string, defaultPort = 25): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?(?::(\d{1,5}))?$/.exec(value.trim())
  if (!m) throw new TenantError(`"${value}" is not host[:port]`)
  const port = m[2] ? Number(m[2]) : defaultPort
  if (port < 1 || port > 65535) throw new TenantError(`port in "${value}" is out of range`)
  return { host: m[1], port }
}

export interface OrgPolicy {
  spam_threshold?: number
  surespam_threshold?: number
  max_message_bytes?: number
  archive_retention_days?: number
  quarantine_retention_days?: number
  backscatter_action?: BackscatterAction
  outbound_hourly_limit?: number
  outbound_spam_limit?: number
  allowlist_skips_rbl_delay?: number
  learn_outbound?: number
  share_learning?: number
  virus_action?: VirusAction
  attachment_action?: AttachmentAction
  dmarc_action?: DmarcAction
}

export interface UserImportRow {
  email: string
  display_name?: string
  role?: 'user' | 'org_admin'
}

export interface ImportResult {
  created: number
  skipped: number
  errors: { line: number; message: string }[]
}

/** All provisioning queries, prepared once per database handle. */
export class Tenants {
  private readonly q

  constructor(private readonly db: Db) {
    this.q = {
      insertOrg: db.prepare(`INSERT INTO organisations (msp_id, name, created_at) VALUES (?, ?, ?)`),
      insertMsp: db.prepare(`INSERT INTO msps (name, created_at) VALUES (?, ?)`),
      mspByName: db.prepare(`SELECT * FROM msps WHERE name = ?`),
      listMsps: db.prepare(
        `SELECT m.id, m.name, m.created_at,
           (SELECT count(*) FROM organisations o WHERE o.msp_id = m.id) AS organisations,
           (SELECT group_concat(a.email, ' ') FROM admins a WHERE a.msp_id = m.id AND a.role = 'msp_admin') AS admins
         FROM msps m ORDER BY m.id`,
      ),
      moveOrg: db.prepare(`UPDATE organisations SET msp_id = ? WHERE id = ?`),
      orgByName: db.prepare(`SELECT * FROM organisations WHERE name = ?`),
      orgById: db.prepare(`SELECT * FROM organisations WHERE id = ?`),
      listOrgs: db.prepare(`SELECT * FROM organisations ORDER BY name`),
      deleteOrg: db.prepare(`DELETE FROM organisations WHERE id = ?`),
      insertDomain: db.prepare(
        `INSERT INTO domains (org_id, name, deliver_host, deliver_port, tag_mode, catch_all, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      domainByName: db.prepare(`SELECT * FROM domains WHERE name = ?`),
      domainOfOrg: db.prepare(`SELECT * FROM domains WHERE id = ? AND org_id = ?`),
      listDomains: db.prepare(
        `SELECT d.*, o.name AS org FROM domains d JOIN organisations o ON o.id = d.org_id ORDER BY d.name`,
      ),
      deleteDomain: db.prepare(`DELETE FROM domains WHERE id = ?`),
      insertUser: db.prepare(
        `INSERT INTO users (org_id, domain_id, email, display_name, role, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
      ),
      insertUserIgnore: db.prepare(
        `INSERT OR IGNORE INTO users (org_id, domain_id, email, display_name, role, created_at)
         VALUES (?, ?, ?, ?, ?, ?)`,
      ),
      userByEmail: db.prepare(`SELECT * FROM users WHERE email = ?`),
      listUsers: db.prepare(
        `SELECT u.id, u.email, u.display_name, u.role, o.name AS org FROM users u
         JOIN organisations o ON o.id = u.org_id ORDER BY u.email`,
      ),
      listUsersOfOrg: db.prepare(
        `SELECT u.id, u.email, u.display_name, u.role, o.name AS org FROM users u
         JOIN organisations o ON o.id = u.org_id WHERE u.org_id = ? ORDER BY u.email`,
      ),
      deleteUser: db.prepare(`DELETE FROM users WHERE id = ?`),
      aliasByAddress: db.prepare(`SELECT * FROM aliases WHERE address = ?`),
      insertAlias: db.prepare(
        `INSERT INTO aliases (org_id, domain_id, address, user_id, created_at) VALUES (?, ?, ?, ?, ?)`,
      ),
      listAliases: db.prepare(
        `SELECT a.id, a.org_id, a.domain_id, a.address, a.user_id, u.email AS target
         FROM aliases a JOIN users u ON u.id = a.user_id ORDER BY a.address`,
      ),
      deleteAlias: db.prepare(`DELETE FROM aliases WHERE address = ?`),
      setCatchAll: db.prepare(`UPDATE domains SET catch_all = ? WHERE id = ?`),
      setTagMode: db.prepare(`UPDATE domains SET tag_mode = ? WHERE id = ?`),
      setVerifyRecipients: db.prepare(`UPDATE domains SET verify_recipients = ? WHERE id = ?`),
    }
  }

  /** An organisation, a customer of one MSP (by default the appliance's first, "local"). */
  addOrg(name: string, mspId = LOCAL_MSP): Organisation {
    const n = name.trim().toLowerCase()
    if (!ORG_NAME.test(n)) {
      throw new TenantError(`organisation name "${name}" must be 1-63 of a-z 0-9 . _ - and start with a letter or digit`)
    }
    if (this.q.orgByName.get(n)) throw new TenantError(`organisation "${n}" exists already`)
    this.q.insertOrg.run(mspId, n, Date.now())
    return this.orgByName(n)!
  }

  /**
   * Another MSP on this appliance: its admins see and manage only its own organisations, and
   * its customers' reports teach only its own fleet (fleet/learning.ts keys by msp_id).
   */
  addMsp(name: string): Msp {
    const n = name.trim().toLowerCase()
    if (!ORG_NAME.test(n)) throw new TenantError(`MSP name "${name}" must be 1-63 of a-z 0-9 . _ - and start with a letter or digit`)
    if (this.q.mspByName.get(n)) throw new TenantError(`MSP "${n}" exists already`)
    this.q.insertMsp.run(n, Date.now())
    return this.msp(n)
  }

  /** An MSP by name; a clear error when there is none. */
  msp(name: string): Msp {
    const m = this.q.mspByName.get(name.trim().toLowerCase()) as Msp | undefined
    if (!m) throw new TenantError(`no MSP named "${name}"`)
    return m
  }

  listMsps(): (Msp & { organisations: number; admins: string | null })[] {
    return this.q.listMsps.all() as (Msp & { organisations: number; admins: string | null })[]
  }

  /** Hands an organisation to another MSP: its admins see it from now on, the old MSP's no longer do. */
  moveOrg(orgName: string, mspName: string): Organisation {
    const org = this.orgByName(orgName)
    if (!org) throw new TenantError(`no organisation named "${orgName}"`)
    this.q.moveOrg.run(this.msp(mspName).id, org.id)
    return this.orgByName(orgName)!
  }

  orgByName(name: string): Organisation | undefined {
    return this.q.orgByName.get(name.trim().toLowerCase()) as Organisation | undefined
  }

  orgById(id: number): Organisation | undefined {
    return this.q.orgById.get(id) as Organisation | undefined
  }

  requireOrg(name: string): Organisation {
    const org = this.orgByName(name)
    if (!org) throw new TenantError(`no organisation "${name}"`)
    return org
  }

  listOrgs(): Organisation[] {
    return this.q.listOrgs.all() as Organisation[]
  }

  /** A suspended organisation receives no mail (550 at RCPT), relays none, and nobody of it signs in. */
  setSuspended(name: string, suspended: boolean, now = Date.now()): Organisation {
    const org = this.requireOrg(name)
    this.db.prepare(`UPDATE organisations SET suspended_at = ? WHERE id = ?`).run(suspended ? (org.suspended_at ?? now) : null, org.id)
    return this.orgById(org.id)!
  }

  removeOrg(name: string): void {
    this.q.deleteOrg.run(this.requireOrg(name).id)
  }

  setPolicy(orgName: string, policy: OrgPolicy): Organisation {
    const org = this.requireOrg(orgName)
    const next = { ...org, ...policy }
    for (const key of ['spam_threshold', 'surespam_threshold'] as const) {
      if (!Number.isFinite(next[key])) throw new TenantError(`${key} must be a number`)
    }
    if (next.surespam_threshold < next.spam_threshold) {
      throw new TenantError('surespam threshold must not be below the spam threshold')
    }
    for (const key of ['max_message_bytes', 'archive_retention_days', 'quarantine_retention_days', 'outbound_hourly_limit', 'outbound_spam_limit'] as const) {
      if (!Number.isInteger(next[key]) || next[key] <= 0) throw new TenantError(`${key} must be a positive whole number`)
    }
    const oneOf = <T extends string>(what: string, value: T, allowed: readonly T[]) => {
      if (!allowed.includes(value)) throw new TenantError(`${what} must be one of ${allowed.join(', ')}`)
    }
    oneOf('backscatter action', next.backscatter_action, BACKSCATTER_ACTIONS)
    oneOf('virus action', next.virus_action, VIRUS_ACTIONS)
    oneOf('attachment action', next.attachment_action, ATTACHMENT_ACTIONS)
    oneOf('DMARC action', next.dmarc_action, DMARC_ACTIONS)
    this.db
      .prepare(
        `UPDATE organisations SET spam_threshold = ?, surespam_threshold = ?, max_message_bytes = ?,
         archive_retention_days = ?, quarantine_retention_days = ?, backscatter_action = ?,
         outbound_hourly_limit = ?, outbound_spam_limit = ?, allowlist_skips_rbl_delay = ?,
         learn_outbound = ?, share_learning = ?, virus_action = ?, attachment_action = ?, dmarc_action = ? WHERE id = ?`,
      )
      .run(
        next.spam_threshold,
        next.surespam_threshold,
        next.max_message_bytes,
        next.archive_retention_days,
        next.quarantine_retention_days,
        next.backscatter_action,
        next.outbound_hourly_limit,
        next.outbound_spam_limit,
        next.allowlist_skips_rbl_delay ? 1 : 0,
        next.learn_outbound ? 1 : 0,
        next.share_learning ? 1 : 0,
        next.virus_action,
        next.attachment_action,
        next.dmarc_action,
        org.id,
      )
    return this.orgById(org.id)!
  }

  addDomain(
    name: string,
    opts: { org: string; deliverTo: string; tagMode?: boolean; catchAll?: boolean },
  ): Domain {
    const n = name.trim().toLowerCase()
    if (!DOMAIN_NAME.test(n)) throw new TenantError(`"${name}" is not a domain name`)
    const org = this.requireOrg(opts.org)
    if (this.q.domainByName.get(n)) throw new TenantError(`domain "${n}" exists already`)
    const { host, port } = parseHostPort(opts.deliverTo)
    this.q.insertDomain.run(org.id, n, host, port, opts.tagMode ? 1 : 0, opts.catchAll ? 1 : 0, Date.now())
    return this.domainByName(n)!
  }

  /** A domain by id, only if it belongs to this organisation (a page's id is not trusted). */
  domainOfOrg(domainId: number, orgId: number): Domain | undefined {
    return this.q.domainOfOrg.get(domainId, orgId) as Domain | undefined
  }

  domainByName(name: string): Domain | undefined {
    return this.q.domainByName.get(name.trim().toLowerCase()) as Domain | undefined
  }

  requireDomain(name: string): Domain {
    const d = this.domainByName(name)
    if (!d) throw new TenantError(`no domain "${name}"`)
    return d
  }

  listDomains(): (Domain & { org: string })[] {
    return this.q.listDomains.all() as (Domain & { org: string })[]
  }

  removeDomain(name: string): void {
    this.q.deleteDomain.run(this.requireDomain(name).id)
  }

  setCatchAll(domain: string, on: boolean): Domain {
    const d = this.requireDomain(domain)
    this.q.setCatchAll.run(on ? 1 : 0, d.id)
    return this.requireDomain(domain)
  }

  setVerifyRecipients(domain: string, on: boolean): Domain {
    const d = this.requireDomain(domain)
    this.q.setVerifyRecipients.run(on ? 1 : 0, d.id)
    return this.requireDomain(domain)
  }

  setTagMode(domain: string, on: boolean): Domain {
    const d = this.requireDomain(domain)
    this.q.setTagMode.run(on ? 1 : 0, d.id)
    return this.requireDomain(domain)
  }

  addUser(address: string, opts: { displayName?: string; role?: 'user' | 'org_admin' } = {}): User {
    const { email, domain } = normaliseAddress(address)
    const d = this.domainByName(domain)
    if (!d) throw new TenantError(`domain "${domain}" is not provisioned; add it with "moat domain add" first`)
    if (this.q.userByEmail.get(email)) throw new TenantError(`user "${email}" exists already`)
    if (this.q.aliasByAddress.get(email)) throw new TenantError(`"${email}" is an alias already`)
    this.q.insertUser.run(d.org_id, d.id, email, opts.displayName ?? null, opts.role ?? 'user', Date.now())
    return this.userByEmail(email)!
  }

  userByEmail(email: string): User | undefined {
    return this.q.userByEmail.get(email.trim().toLowerCase()) as User | undefined
  }

  listUsers(orgName?: string): (User & { org: string })[] {
    if (orgName) return this.q.listUsersOfOrg.all(this.requireOrg(orgName).id) as (User & { org: string })[]
    return this.q.listUsers.all() as (User & { org: string })[]
  }

  removeUser(email: string): void {
    const u = this.userByEmail(email)
    if (!u) throw new TenantError(`no user "${email}"`)
    this.q.deleteUser.run(u.id)
  }

  /**
   * Bulk activation in one transaction: rows for unknown domains are reported, existing
   * users are skipped, so an import can be re-run after fixing its errors.
   */
  /** orgId: only that organisation's domains may be imported into (the web UI's tenant scope). */
  importUsers(rows: Iterable<UserImportRow & { line: number }>, onProgress?: (done: number) => void, orgId?: number): ImportResult {
    const result: ImportResult = { created: 0, skipped: 0, errors: [] }
    const domainCache = new Map<string, Domain | undefined>()
    const now = Date.now()
    let done = 0
    this.db.transaction(() => {
      for (const row of rows) {
        done++
        if (onProgress && done % 1000 === 0) onProgress(done)
        let norm
        try {
          norm = normaliseAddress(row.email)
        } catch (err) {
          result.errors.push({ line: row.line, message: (err as Error).message })
          continue
        }
        if (row.role && row.role !== 'user' && row.role !== 'org_admin') {
          result.errors.push({ line: row.line, message: `role "${row.role}" is not user or org_admin` })
          continue
        }
        let d = domainCache.get(norm.domain)
        if (!domainCache.has(norm.domain)) {
          d = this.domainByName(norm.domain)
          domainCache.set(norm.domain, d)
        }
        if (!d || (orgId !== undefined && d.org_id !== orgId)) {
          result.errors.push({ line: row.line, message: `domain "${norm.domain}" is not provisioned` })
          continue
        }
        const info = this.q.insertUserIgnore.run(
          d.org_id, d.id, norm.email, row.display_name || null, row.role ?? 'user', now,
        )
        if (info.changes) result.created++
        else result.skipped++
      }
    })()
    onProgress?.(done)
    return result
  }

  addAlias(address: string, target: string): Alias {
    const { email, domain } = normaliseAddress(address)
    const d = this.domainByName(domain)
    if (!d) throw new TenantError(`domain "${domain}" is not provisioned`)
    const user = this.userByEmail(target)
    if (!user) throw new TenantError(`alias target "${target}" is not a user`)
    // An alias may only point inside its own organisation, or mail would cross tenants.
    if (user.org_id !== d.org_id) throw new TenantError(`alias and target must belong to the same organisation`)
    if (this.q.userByEmail.get(email)) throw new TenantError(`"${email}" is a user already`)
    if (this.q.aliasByAddress.get(email)) throw new TenantError(`alias "${email}" exists already`)
    this.q.insertAlias.run(d.org_id, d.id, email, user.id, Date.now())
    return (this.q.listAliases.all() as Alias[]).find((a) => a.address === email)!
  }

  listAliases(): Alias[] {
    return this.q.listAliases.all() as Alias[]
  }

  removeAlias(address: string): void {
    const info = this.q.deleteAlias.run(address.trim().toLowerCase())
    if (!info.changes) throw new TenantError(`no alias "${address}"`)
  }
}
