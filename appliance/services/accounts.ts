/*
 * Who may use the web UI and API, and with what reach. Appliance and MSP admins are accounts
 * of their own; organisation admins and end users log in with their mailbox address. Every
 * password and code check goes through the shared PasswordGuard (sign-in/password-guard.ts); sessions are server-side rows keyed by the
 * hash of the cookie's token, with an idle timeout; every session has its CSRF token.
 */
import crypto from 'node:crypto'
import type { Db } from '../db/database'
import { type Channel, PasswordGuard, WINDOW_MS } from '../sign-in/password-guard'
import { hashPassword, verifyPassword } from './passwords'
import { verify as verifyTotp } from './totp'
import { TenantError } from './tenants'

export type Role = 'appliance_admin' | 'msp_admin' | 'org_admin' | 'user'

export interface Principal {
  kind: 'admin' | 'user'
  id: number
  email: string
  role: Role
  /** MSP admins: their MSP; everyone else's organisation belongs to one too */
  mspId: number | null
  /** organisation admins and users */
  orgId: number | null
  /** has a TOTP second factor */
  totp: boolean
}

/** What a principal may see: null orgIds = every organisation; userId = only that user's own. */
export interface Scope {
  orgIds: number[] | null
  userId: number | null
  addresses: string[]
  /** sees surespam entries: admins always, an end user who chose to */
  surespam: boolean
}

/** May this scope see a row of organisation orgId belonging to userId? */
export function canSee(scope: Scope, orgId: number, userId: number | null): boolean {
  if (scope.orgIds !== null && !scope.orgIds.includes(orgId)) return false
  return scope.userId === null || scope.userId === userId
}

/** May this scope see an archived message: its tenant's, and for an end user mail they sent or received? */
export function canSeeMessage(scope: Scope, m: { org_id: number; mail_from: string; rcpt_to: string }): boolean {
  if (scope.orgIds !== null && !scope.orgIds.includes(m.org_id)) return false
  if (scope.userId === null) return true
  const mine = new Set(scope.addresses.map((a) => a.toLowerCase()))
  return [m.mail_from, ...m.rcpt_to.split(',')].some((a) => mine.has(a.trim().toLowerCase()))
}

/** May this scope see a quarantine entry (its tenant, its owner, and surespam only when chosen)? */
export function canSeeEntry(scope: Scope, e: { org_id: number; user_id: number | null; verdict: string }): boolean {
  return canSee(scope, e.org_id, e.user_id) && (scope.surespam || e.verdict !== 'surespam')
}

export interface Session {
  token: string
  csrf: string
  principal: Principal
  /** password checked, second factor still to come: good for the TOTP step only */
  mfaPending: boolean
  /** admins: how many alerts are open for them (the web layer fills this in for the banner) */
  openAlerts?: number
  /** MSP and appliance admins: the organisation they switched into, or null */
  viewOrgId: number | null
  /** its name (the web layer fills this in for the banner) */
  viewOrgName?: string
}

/** Appliance-wide setting: appliance and MSP admins must have a second factor (default on). */
export const REQUIRE_ADMIN_TOTP = 'require_admin_totp'

export const IDLE_TIMEOUT_MS = 30 * 60_000
const ABSOLUTE_TIMEOUT_MS = 12 * 3_600_000
export type LoginResult =
  | { ok: true; session: Session; /** the browser's device token, for its cookie */ device: string }
  | { ok: false; reason: 'invalid' }
  | { ok: false; reason: 'throttled'; retryAfterSeconds: number }

function tokenHash(token: string): string {
  return crypto.createHash('sha256').update(token).digest('hex')
}

export class Accounts {
  private readonly q
  readonly guard: PasswordGuard

  constructor(private readonly db: Db) {
    this.guard = new PasswordGuard(db)
    this.q = {
      adminByEmail: db.prepare(`SELECT * FROM admins WHERE email = ?`),
      adminById: db.prepare(`SELECT * FROM admins WHERE id = ?`),
      insertAdmin: db.prepare(`INSERT INTO admins (email, password_hash, role, msp_id, created_at) VALUES (?, ?, ?, ?, ?)`),
      countAdmins: db.prepare(`SELECT count(*) AS n FROM admins`),
      userByEmail: db.prepare(
        `SELECT u.id, u.email, u.role, u.org_id, u.password_hash, o.msp_id, o.suspended_at FROM users u
         JOIN organisations o ON o.id = u.org_id WHERE u.email = ?`,
      ),
      userById: db.prepare(
        `SELECT u.id, u.email, u.role, u.org_id, u.totp_secret, o.msp_id, o.suspended_at FROM users u
         JOIN organisations o ON o.id = u.org_id WHERE u.id = ?`,
      ),
      aliasesOf: db.prepare(`SELECT address FROM aliases WHERE user_id = ?`),
      orgsOfMsp: db.prepare(`SELECT id FROM organisations WHERE msp_id = ?`),
      showSurespam: db.prepare(`SELECT show_surespam FROM users WHERE id = ?`),
      pruneFailures: db.prepare(`DELETE FROM login_failures WHERE at < ?`),
      insertSession: db.prepare(
        `INSERT INTO sessions (id, kind, principal_id, csrf, ip, created_at, last_seen_at, mfa_pending) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      session: db.prepare(`SELECT * FROM sessions WHERE id = ?`),
      touch: db.prepare(`UPDATE sessions SET last_seen_at = ? WHERE id = ?`),
      deleteSession: db.prepare(`DELETE FROM sessions WHERE id = ?`),
      pruneSessions: db.prepare(`DELETE FROM sessions WHERE last_seen_at < ? OR created_at < ?`),
      audit: db.prepare(`INSERT INTO audit_log (at, actor, org_id, action, detail) VALUES (?, ?, ?, ?, ?)`),
    }
  }

  /**
   * A one-time setup token while no admin exists (a new one each start; only its hash is
   * stored), or null once there is an admin.
   */
  setupToken(): string | null {
    if (this.hasAdmin()) return null
    const token = crypto.randomBytes(24).toString('base64url')
    this.db.prepare(`INSERT INTO settings (key, value) VALUES ('setup_token', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`).run(JSON.stringify(tokenHash(token)))
    return token
  }

  /** Is this the current setup token (and still no admin)? */
  setupTokenValid(token: string): boolean {
    const row = this.db.prepare(`SELECT value FROM settings WHERE key = 'setup_token'`).get() as { value: string } | undefined
    if (!row || this.hasAdmin()) return false
    const want = Buffer.from(JSON.parse(row.value) as string)
    const got = Buffer.from(tokenHash(token))
    return want.length === got.length && crypto.timingSafeEqual(want, got)
  }

  /** Creates the first admin with the setup token; refused once any admin exists. */
  async setupFirstAdmin(token: string, email: string, password: string): Promise<number | null> {
    if (!this.setupTokenValid(token)) return null
    const id = await this.createAdmin(email, password)
    this.db.prepare(`DELETE FROM settings WHERE key = 'setup_token'`).run()
    return id
  }

  hasAdmin(): boolean {
    return (this.q.countAdmins.get() as { n: number }).n > 0
  }

  /** An appliance admin, or an admin of one MSP (`mspId`) who sees only that MSP's organisations. */
  async createAdmin(email: string, password: string, role: 'appliance_admin' | 'msp_admin' = 'appliance_admin', mspId = 1): Promise<number> {
    const e = email.trim().toLowerCase()
    if (!/^[^@\s]+@[^@\s]+$/.test(e)) throw new TenantError(`"${email}" is not an e-mail address`)
    if (this.q.adminByEmail.get(e)) throw new TenantError(`admin "${e}" exists already`)
    let hash: string
    try {
      hash = await hashPassword(password)
    } catch (err) {
      throw new TenantError((err as Error).message)
    }
    return Number(this.q.insertAdmin.run(e, hash, role, mspId, Date.now()).lastInsertRowid)
  }

  private principalFor(kind: 'admin' | 'user', id: number): Principal | null {
    if (kind === 'admin') {
      const a = this.q.adminById.get(id) as { id: number; email: string; role: Role; msp_id: number; totp_secret: string | null } | undefined
      return a ? { kind, id: a.id, email: a.email, role: a.role, mspId: a.role === 'msp_admin' ? a.msp_id : null, orgId: null, totp: !!a.totp_secret } : null
    }
    const u = this.q.userById.get(id) as { id: number; email: string; role: Role; org_id: number; msp_id: number; suspended_at: number | null; totp_secret: string | null } | undefined
    if (!u || u.suspended_at) return null
    return { kind, id: u.id, email: u.email, role: u.role, mspId: u.msp_id, orgId: u.org_id, totp: !!u.totp_secret }
  }

  /**
   * Checks a password through the guard; a throttled login is refused without checking.
   * `device`: the browser's device cookie, which keeps its owner out of a stranger's throttle.
   */
  async login(email: string, password: string, ip: string, now = Date.now(), device: string | null = null): Promise<LoginResult> {
    const e = email.trim().toLowerCase()
    const attempt = { account: e, ip, device, via: 'web' as const }
    const allowed = this.guard.check(attempt, now)
    if (!allowed.ok) return { ok: false, reason: 'throttled', retryAfterSeconds: allowed.retryAfterSeconds }
    const admin = this.q.adminByEmail.get(e) as { id: number; password_hash: string } | undefined
    const user = admin ? undefined : (this.q.userByEmail.get(e) as { id: number; password_hash: string | null; suspended_at: number | null } | undefined)
    const ok = await verifyPassword(password, admin?.password_hash ?? user?.password_hash)
    if (!ok || (user && user.suspended_at)) {
      this.guard.failed(attempt, now)
      return { ok: false, reason: 'invalid' }
    }
    const deviceToken = this.guard.succeeded(attempt, allowed, now)!
    const kind = admin ? 'admin' : 'user'
    const principal = this.principalFor(kind, (admin ?? user)!.id)!
    const token = crypto.randomBytes(32).toString('base64url')
    const csrf = crypto.randomBytes(24).toString('base64url')
    this.q.insertSession.run(tokenHash(token), kind, principal.id, csrf, ip, now, now, principal.totp ? 1 : 0)
    this.audit(principal, principal.totp ? 'login-password' : 'login', '', now)
    return { ok: true, device: deviceToken, session: { token, csrf, principal, mfaPending: principal.totp, viewOrgId: null } }
  }

  /**
   * A signed-in person's password again, before something only its owner may do (creating an
   * API token): through the guard like every other password check.
   */
  async confirmPassword(p: Principal, password: string, ip: string, via: Channel, now = Date.now()): Promise<'ok' | 'wrong' | 'throttled'> {
    const attempt = { account: p.email, ip, via }
    const allowed = this.guard.check(attempt, now)
    if (!allowed.ok) return 'throttled'
    const row = (p.kind === 'admin' ? this.q.adminById.get(p.id) : this.q.userByEmail.get(p.email)) as { password_hash: string | null } | undefined
    if (await verifyPassword(password, row?.password_hash)) {
      this.guard.succeeded(attempt, allowed, now)
      return 'ok'
    }
    this.guard.failed(attempt, now)
    return 'wrong'
  }

  /** The live session for a cookie token, or null (unknown, idle too long, or too old). */
  session(token: string | undefined, now = Date.now()): Session | null {
    if (!token) return null
    const id = tokenHash(token)
    const row = this.q.session.get(id) as { kind: 'admin' | 'user'; principal_id: number; csrf: string; created_at: number; last_seen_at: number; mfa_pending: number; view_org_id: number | null } | undefined
    if (!row) return null
    if (now - row.last_seen_at > IDLE_TIMEOUT_MS || now - row.created_at > ABSOLUTE_TIMEOUT_MS) {
      this.q.deleteSession.run(id)
      return null
    }
    const principal = this.principalFor(row.kind, row.principal_id)
    if (!principal) return null
    // One write a minute at most, not one per request.
    if (now - row.last_seen_at > 60_000) this.q.touch.run(now, id)
    return { token, csrf: row.csrf, principal, mfaPending: row.mfa_pending === 1, viewOrgId: row.view_org_id }
  }

  private totpRow(p: Principal): { secret: string | null; last: number | null } {
    const row = this.db.prepare(`SELECT totp_secret AS secret, totp_last_step AS last FROM ${p.kind === 'admin' ? 'admins' : 'users'} WHERE id = ?`).get(p.id) as
      | { secret: string | null; last: number | null }
      | undefined
    return row ?? { secret: null, last: null }
  }

  /** Checks a TOTP code for a principal; a code works once. Guessing codes is throttled like passwords. */
  checkTotp(p: Principal, code: string, now = Date.now(), ip = 'unknown'): boolean {
    const attempt = { account: p.email, ip, via: 'totp' as const }
    const allowed = this.guard.check(attempt, now)
    if (!allowed.ok) return false
    const { secret, last } = this.totpRow(p)
    const step = secret ? verifyTotp(secret, code, now, last) : null
    if (step === null) {
      this.guard.failed(attempt, now)
      return false
    }
    this.guard.succeeded(attempt, allowed, now)
    this.db.prepare(`UPDATE ${p.kind === 'admin' ? 'admins' : 'users'} SET totp_last_step = ? WHERE id = ?`).run(step, p.id)
    return true
  }

  /** The second step of a sign-in: the session is complete once the code checks. */
  completeMfa(session: Session, code: string, now = Date.now(), ip = 'unknown'): boolean {
    if (!session.mfaPending || !this.checkTotp(session.principal, code, now, ip)) return false
    this.db.prepare(`UPDATE sessions SET mfa_pending = 0 WHERE id = ?`).run(tokenHash(session.token))
    this.audit(session.principal, 'login', 'with TOTP', now)
    return true
  }

  /** Turns TOTP on with a secret the user's app has, proven by a current code from it. */
  enableTotp(p: Principal, secret: string, code: string, now = Date.now()): boolean {
    const step = verifyTotp(secret, code, now, null)
    if (step === null) return false
    this.db.prepare(`UPDATE ${p.kind === 'admin' ? 'admins' : 'users'} SET totp_secret = ?, totp_last_step = ? WHERE id = ?`).run(secret, step, p.id)
    this.audit(p, 'totp-enable', '', now)
    return true
  }

  disableTotp(p: Principal, code: string, now = Date.now(), ip = 'unknown'): boolean {
    if (!this.checkTotp(p, code, now, ip)) return false
    this.db.prepare(`UPDATE ${p.kind === 'admin' ? 'admins' : 'users'} SET totp_secret = NULL, totp_last_step = NULL WHERE id = ?`).run(p.id)
    this.audit(p, 'totp-disable', '', now)
    return true
  }

  /** Must this principal set up a second factor before doing anything else? */
  mustEnrollTotp(p: Principal): boolean {
    if (p.totp || (p.role !== 'appliance_admin' && p.role !== 'msp_admin')) return false
    const row = this.db.prepare(`SELECT value FROM settings WHERE key = ?`).get(REQUIRE_ADMIN_TOTP) as { value: string } | undefined
    return row ? JSON.parse(row.value) !== false : true
  }

  logout(token: string): void {
    this.q.deleteSession.run(tokenHash(token))
  }

  prune(now = Date.now()): void {
    this.q.pruneSessions.run(now - IDLE_TIMEOUT_MS, now - ABSOLUTE_TIMEOUT_MS)
    this.q.pruneFailures.run(now - WINDOW_MS)
  }

  /**
   * Switches an admin's session into one organisation's view (null: back to all). Only an
   * organisation the principal may see anyway; the caller checks that with scope().
   */
  setView(session: Session, orgId: number | null): void {
    this.db.prepare(`UPDATE sessions SET view_org_id = ? WHERE id = ?`).run(orgId, tokenHash(session.token))
    session.viewOrgId = orgId
  }

  /** The principal's scope, narrowed to the organisation its session switched into. */
  sessionScope(session: Session): Scope {
    const scope = this.scope(session.principal)
    const view = session.viewOrgId
    if (view === null || session.principal.role === 'user' || session.principal.role === 'org_admin') return scope
    if (scope.orgIds !== null && !scope.orgIds.includes(view)) return scope
    return { ...scope, orgIds: [view] }
  }

  /** An end user's choice to see surespam in their quarantine (off: it stays quiet). */
  setShowSurespam(p: Principal, on: boolean): void {
    if (p.kind !== 'user') return
    this.db.prepare(`UPDATE users SET show_surespam = ? WHERE id = ?`).run(on ? 1 : 0, p.id)
    this.audit(p, 'show-surespam', on ? 'on' : 'off')
  }

  scope(p: Principal): Scope {
    switch (p.role) {
      case 'appliance_admin':
        return { orgIds: null, userId: null, addresses: [], surespam: true }
      case 'msp_admin':
        return { orgIds: (this.q.orgsOfMsp.all(p.mspId) as { id: number }[]).map((r) => r.id), userId: null, addresses: [], surespam: true }
      case 'org_admin':
        return { orgIds: [p.orgId!], userId: null, addresses: [], surespam: true }
      case 'user':
        return {
          orgIds: [p.orgId!],
          userId: p.id,
          addresses: [p.email, ...(this.q.aliasesOf.all(p.id) as { address: string }[]).map((a) => a.address)],
          surespam: (this.q.showSurespam.get(p.id) as { show_surespam: number } | undefined)?.show_surespam === 1,
        }
    }
  }

  audit(actor: Principal, action: string, detail = '', now = Date.now()): void {
    this.q.audit.run(now, `${actor.kind}:${actor.email}`, actor.orgId, action, detail)
  }

  /** A new API token for this principal; the token itself is shown once and never stored. */
  createToken(p: Principal, name: string, now = Date.now()): { id: number; token: string } {
    const label = name.trim().slice(0, 80) || 'client'
    const token = `moat_${crypto.randomBytes(32).toString('base64url')}`
    const id = Number(
      this.db.prepare(`INSERT INTO api_tokens (kind, principal_id, name, token_hash, created_at) VALUES (?, ?, ?, ?, ?)`).run(p.kind, p.id, label, tokenHash(token), now).lastInsertRowid,
    )
    this.audit(p, 'api-token-create', label, now)
    return { id, token }
  }

  listTokens(p: Principal): { id: number; name: string; created_at: number; last_used_at: number | null }[] {
    return this.db
      .prepare(`SELECT id, name, created_at, last_used_at FROM api_tokens WHERE kind = ? AND principal_id = ? AND revoked_at IS NULL ORDER BY id`)
      .all(p.kind, p.id) as { id: number; name: string; created_at: number; last_used_at: number | null }[]
  }

  revokeToken(p: Principal, id: number): boolean {
    return this.db.prepare(`UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND kind = ? AND principal_id = ? AND revoked_at IS NULL`).run(Date.now(), id, p.kind, p.id).changes > 0
  }

  /** The principal an API token stands for, or null (unknown, revoked, or its owner gone). */
  principalForToken(token: string | undefined, now = Date.now()): Principal | null {
    if (!token?.startsWith('moat_')) return null
    const row = this.db.prepare(`SELECT id, kind, principal_id, last_used_at FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL`).get(tokenHash(token)) as
      | { id: number; kind: 'admin' | 'user'; principal_id: number; last_used_at: number | null }
      | undefined
    if (!row) return null
    if (!row.last_used_at || now - row.last_used_at > 60_000) this.db.prepare(`UPDATE api_tokens SET last_used_at = ? WHERE id = ?`).run(now, row.id)
    return this.principalFor(row.kind, row.principal_id)
  }

  /** For the mailbox users' own password change. */
  async changePassword(p: Principal, current: string, next: string, ip = 'unknown'): Promise<boolean> {
    if ((await this.confirmPassword(p, current, ip, 'password-change')) !== 'ok') return false
    let hash: string
    try {
      hash = await hashPassword(next)
    } catch (err) {
      throw new TenantError((err as Error).message)
    }
    this.db.prepare(p.kind === 'admin' ? `UPDATE admins SET password_hash = ? WHERE id = ?` : `UPDATE users SET password_hash = ? WHERE id = ?`).run(hash, p.id)
    this.audit(p, 'password-change')
    return true
  }
}

