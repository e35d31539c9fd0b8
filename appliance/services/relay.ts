/*
 * Who may send outbound mail through Moat: a customer mail server whose address is in one
 * of its organisation's relay networks, or a user who authenticated with SMTP AUTH. And as
 * whom: a relaying client may use only its own organisation's domains as sender (or the
 * null sender of its own bounces); a user only their own address or their aliases. Without
 * that second rule one tenant could send as another tenant's domains.
 *
 * Read from the live database on every connection, so changes apply without a restart.
 */
import net from 'node:net'
import type { Db } from '../db/database'
import { PasswordGuard } from '../sign-in/password-guard'
import { hashPassword, verifyPassword } from './passwords'
import { TenantError, normaliseAddress } from './tenants'

export interface RelayNetwork {
  id: number
  org_id: number
  org: string
  cidr: string
  description: string
  created_at: number
}

export interface SmtpUser {
  id: number
  orgId: number
  email: string
}

/** Parses "192.0.2.0/24", "2001:db8::/32" or a bare address into a normal CIDR string. */
export function parseCidr(value: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6'; cidr: string } {
  const [addr, len] = value.trim().split('/')
  const v = net.isIP(addr)
  if (!v) throw new TenantError(`"${value}" is not an IP address or CIDR network`)
  const max = v === 4 ? 32 : 128
  const prefix = len === undefined ? max : Number(len)
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) throw new TenantError(`"${value}" has an invalid prefix length`)
  // An open relay by configuration is still an open relay.
  if (prefix < (v === 4 ? 8 : 16)) throw new TenantError(`"${value}" is too wide to be one customer's mail servers`)
  const family = v === 4 ? 'ipv4' : 'ipv6'
  return { address: addr.toLowerCase(), prefix, family, cidr: `${addr.toLowerCase()}/${prefix}` }
}

export class RelayControl {
  private readonly q

  private readonly guard: PasswordGuard
  /** The last queued AUTH check per login and client address (see authenticate). */
  private readonly inFlight = new Map<string, Promise<void>>()

  constructor(private readonly db: Db, log?: (msg: string) => void) {
    this.guard = new PasswordGuard(db, log)
    this.q = {
      networks: db.prepare(
        `SELECT r.*, o.name AS org FROM relay_networks r JOIN organisations o ON o.id = r.org_id
         WHERE o.suspended_at IS NULL ORDER BY o.name, r.cidr`,
      ),
      allNetworks: db.prepare(`SELECT r.*, o.name AS org FROM relay_networks r JOIN organisations o ON o.id = r.org_id WHERE @org IS NULL OR r.org_id = @org ORDER BY o.name, r.cidr`),
      insert: db.prepare(`INSERT INTO relay_networks (org_id, cidr, description, created_at) VALUES (?, ?, ?, ?)`),
      remove: db.prepare(`DELETE FROM relay_networks WHERE cidr = ?`),
      orgByName: db.prepare(`SELECT id FROM organisations WHERE name = ?`),
      userForAuth: db.prepare(
        `SELECT u.id, u.org_id, u.email, u.password_hash, o.suspended_at FROM users u
         JOIN organisations o ON o.id = u.org_id WHERE u.email = ?`,
      ),
      setPassword: db.prepare(`UPDATE users SET password_hash = ? WHERE email = ?`),
      senderDomain: db.prepare(`SELECT org_id FROM domains WHERE name = ?`),
      senderOfUser: db.prepare(
        `SELECT 1 FROM users WHERE id = @user AND email = @email
         UNION ALL SELECT 1 FROM aliases WHERE user_id = @user AND address = @email`,
      ),
    }
  }

  addNetwork(orgName: string, cidr: string, description = ''): RelayNetwork {
    const org = this.q.orgByName.get(orgName.trim().toLowerCase()) as { id: number } | undefined
    if (!org) throw new TenantError(`no organisation "${orgName}"`)
    const n = parseCidr(cidr)
    if (this.listNetworks().some((r) => r.cidr === n.cidr)) throw new TenantError(`${n.cidr} is registered already`)
    this.q.insert.run(org.id, n.cidr, description, Date.now())
    return this.listNetworks().find((r) => r.cidr === n.cidr)!
  }

  removeNetwork(cidr: string): void {
    const n = parseCidr(cidr)
    if (!this.q.remove.run(n.cidr).changes) throw new TenantError(`${n.cidr} is not registered`)
  }

  /** One organisation's networks, or every organisation's. */
  listNetworks(orgId: number | null = null): RelayNetwork[] {
    return this.q.allNetworks.all({ org: orgId }) as RelayNetwork[]
  }

  /** The organisation whose registered mail server this address is, if any. */
  orgForClient(ip: string): number | null {
    const addr = ip.replace(/^::ffff:(?=\d+\.)/, '')
    const family = net.isIP(addr) === 6 ? 'ipv6' : 'ipv4'
    for (const r of this.q.networks.all() as RelayNetwork[]) {
      const n = parseCidr(r.cidr)
      if (n.family !== family) continue
      const list = new net.BlockList()
      list.addSubnet(n.address, n.prefix, family)
      if (list.check(addr, family)) return r.org_id
    }
    return null
  }

  async setPassword(email: string, password: string): Promise<void> {
    const { email: e } = normaliseAddress(email)
    if (!this.q.userForAuth.get(e)) throw new TenantError(`no user "${email}"`)
    let hash: string
    try {
      hash = await hashPassword(password)
    } catch (err) {
      throw new TenantError((err as Error).message)
    }
    this.q.setPassword.run(hash, e)
  }

  /**
   * Checks an SMTP AUTH login through the password guard the web sign-in shares (the same
   * password opens both): user null for a wrong password, an unknown user or a suspended
   * organisation alike; `retryAfterSeconds` when the guard refused to check it at all.
   */
  async authenticate(login: string, password: string, ip = 'unknown', now?: number): Promise<{ user: SmtpUser | null; retryAfterSeconds?: number }> {
    // One check at a time per login and client address. The guard counts each check as a
    // failure until it is known to be right, so a mail client opening eight connections at
    // once with the right password tripped the guard's delay itself (a 535 from the fourth
    // on). Queued, each check sees the earlier ones resolved; a guesser's parallel guesses
    // are counted one by one, as the guard means them to be.
    const key = `${login.trim().toLowerCase()}|${ip}`
    const mine = (this.inFlight.get(key) ?? Promise.resolve()).then(() => this.checkPassword(login, password, ip, now ?? Date.now()))
    const settled = mine.then(
      () => undefined,
      () => undefined,
    )
    this.inFlight.set(key, settled)
    try {
      return await mine
    } finally {
      if (this.inFlight.get(key) === settled) this.inFlight.delete(key)
    }
  }

  private async checkPassword(login: string, password: string, ip: string, now: number): Promise<{ user: SmtpUser | null; retryAfterSeconds?: number }> {
    const attempt = { account: login.trim().toLowerCase(), ip, via: 'smtp' as const }
    const allowed = this.guard.check(attempt, now)
    if (!allowed.ok) return { user: null, retryAfterSeconds: allowed.retryAfterSeconds }
    const row = this.q.userForAuth.get(attempt.account) as
      | { id: number; org_id: number; email: string; password_hash: string | null; suspended_at: number | null }
      | undefined
    const ok = await verifyPassword(password, row?.password_hash)
    if (!ok || !row || row.suspended_at) {
      this.guard.failed(attempt, now)
      return { user: null }
    }
    this.guard.succeeded(attempt, allowed, now)
    return { user: { id: row.id, orgId: row.org_id, email: row.email } }
  }

  /** May this client send with this envelope sender? */
  senderAllowed(sender: string, who: { orgId: number; userId?: number | null }): boolean {
    if (!sender) return who.userId == null // bounces come from servers, not from users
    const email = sender.toLowerCase()
    const domain = email.slice(email.lastIndexOf('@') + 1)
    if (who.userId != null) return !!this.q.senderOfUser.get({ user: who.userId, email })
    const row = this.q.senderDomain.get(domain) as { org_id: number } | undefined
    return row?.org_id === who.orgId
  }
}
