/*
 * /api/v1/admin: provisioning from the MSP's own tools. Organisations, domains, users (one by
 * one, and an idempotent bulk PUT of up to 100,000 at a time), aliases and the tracking
 * centre's search. A token acts with its maker's role and scope (the UI's own rules): an
 * organisation outside it is a 404, an end user's token is refused, and only MSP and
 * appliance admins create organisations. Documented at /api/v1/admin/openapi.json, generated
 * from the schemas below.
 */
import { Hono } from 'hono'
import { z } from 'zod'
import type { Db } from '../../appliance/db/database'
import type { Accounts, Principal, Scope } from '../../appliance/services/accounts'
import { normaliseAddress, type Organisation, TenantError, Tenants } from '../../appliance/services/tenants'
import { Tracking } from '../../appliance/tracking/search'
import { AdminApi, type AdminEnv, ApiError } from './define'

const orgName = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'an organisation name: a-z 0-9 . _ -').describe('organisation name')
const email = z.string().min(3).max(254).describe('e-mail address')
const role = z.enum(['user', 'org_admin'])

const Organisation_ = z.object({ id: z.number().int(), name: z.string(), msp: z.string(), suspended: z.boolean(), domains: z.number().int(), users: z.number().int() })
const Domain_ = z.object({ name: z.string(), deliver_to: z.string(), tag_mode: z.boolean(), catch_all: z.boolean(), verify_recipients: z.boolean() })
const User_ = z.object({ email: z.string(), display_name: z.string().nullable(), role, from_directory: z.boolean() })
const Alias_ = z.object({ address: z.string(), target: z.string() })
const UserPut = z.object({ email, display_name: z.string().max(200).nullable().optional(), role: role.optional() })
const BulkResult = z.object({
  created: z.number().int(),
  updated: z.number().int(),
  unchanged: z.number().int(),
  errors: z.array(z.object({ index: z.number().int(), email: z.string(), error: z.string() })),
})
const OrgParam = z.object({ org: orgName })
const Transaction_ = z.object({
  at: z.number(), outcome: z.enum(['accepted', 'refused']), id: z.string(), org: z.string().nullable(), client_ip: z.string().nullable(), mail_from: z.string().nullable(),
  subject: z.string().nullable(), verdict: z.string().nullable(), refusal: z.object({ stage: z.string(), code: z.number(), reason: z.string(), by: z.string() }).nullable(),
  recipients: z.array(z.object({ address: z.string(), state: z.string(), detail: z.string().nullable(), attempts: z.array(z.object({ at: z.number(), outcome: z.string(), code: z.number().nullable(), response: z.string().nullable() })) })),
})

export const MAX_BULK = 100_000

export function adminApiRoutes(deps: { db: Db; accounts: Accounts; version: string }): Hono<AdminEnv> {
  const app = new Hono<AdminEnv>()
  const api = new AdminApi(app)
  const tenants = new Tenants(deps.db)
  const tracking = new Tracking(deps.db)
  const q = {
    orgs: deps.db.prepare(
      `SELECT o.id, o.name, m.name AS msp, o.suspended_at,
         (SELECT count(*) FROM domains d WHERE d.org_id = o.id) AS domains, (SELECT count(*) FROM users u WHERE u.org_id = o.id) AS users
       FROM organisations o JOIN msps m ON m.id = o.msp_id ORDER BY o.name`,
    ),
    domains: deps.db.prepare(`SELECT * FROM domains WHERE org_id = ? ORDER BY name`),
    users: deps.db.prepare(`SELECT email, display_name, role, from_directory FROM users WHERE org_id = ? AND email > ? ORDER BY email LIMIT ?`),
    user: deps.db.prepare(`SELECT id, org_id, display_name, role FROM users WHERE email = ?`),
    isAlias: deps.db.prepare(`SELECT 1 FROM aliases WHERE address = ?`).pluck(),
    insertUser: deps.db.prepare(`INSERT INTO users (org_id, domain_id, email, display_name, role, created_at) VALUES (?, ?, ?, ?, ?, ?)`),
    updateUser: deps.db.prepare(`UPDATE users SET display_name = ?, role = ? WHERE id = ?`),
    aliases: deps.db.prepare(`SELECT a.address, u.email AS target FROM aliases a JOIN users u ON u.id = a.user_id WHERE a.org_id = ? ORDER BY a.address`),
  }

  app.use('/api/v1/admin/*', async (c, next) => {
    if (c.req.path === '/api/v1/admin/openapi.json') return next()
    if (c.get('principal')?.role === 'user') return c.json({ error: "the admin API is for administrators; this token is an end user's" }, 403)
    await next()
  })
  let spec: object | null = null
  app.get('/api/v1/admin/openapi.json', (c) => c.json((spec ??= api.openapi({ title: 'Moat admin API', version: deps.version }))))

  /** The organisation by name, if the token's scope includes it. */
  const orgIn = (scope: Scope, name: string): Organisation => {
    const org = tenants.orgByName(name)
    if (!org || (scope.orgIds !== null && !scope.orgIds.includes(org.id))) throw new ApiError(404, `no organisation "${name}"`)
    return org
  }
  const tenantCall = <T>(fn: () => T): T => {
    try {
      return fn()
    } catch (err) {
      if (err instanceof TenantError) throw new ApiError(/exists already/.test(err.message) ? 409 : 400, err.message)
      throw err
    }
  }
  const audit = (p: Principal, action: string, detail: string) => deps.accounts.audit(p, action, `${detail} (API)`)

  api.add({
    method: 'get', path: '/api/v1/admin/organisations', tag: 'organisations', summary: 'The organisations in the token\'s scope',
    response: z.object({ items: z.array(Organisation_) }),
    run: ({ scope }) => ({
      items: (q.orgs.all() as { id: number; name: string; msp: string; suspended_at: number | null; domains: number; users: number }[])
        .filter((o) => scope.orgIds === null || scope.orgIds.includes(o.id))
        .map((o) => ({ id: o.id, name: o.name, msp: o.msp, suspended: o.suspended_at !== null, domains: o.domains, users: o.users })),
    }),
  })

  api.add({
    method: 'post', path: '/api/v1/admin/organisations', tag: 'organisations', status: 201,
    summary: "Create an organisation (MSP and appliance admins); an MSP admin's is always its own MSP's",
    body: z.object({ name: orgName, msp: z.string().optional().describe('the MSP (appliance admin only; default the first)') }),
    response: z.object({ id: z.number().int(), name: z.string() }),
    run: ({ principal, body }) => {
      if (principal.role !== 'appliance_admin' && principal.role !== 'msp_admin') throw new ApiError(403, 'only MSP and appliance admins create organisations')
      const mspId = principal.role === 'msp_admin' ? principal.mspId! : body.msp ? tenantCall(() => tenants.msp(body.msp!).id) : undefined
      const org = tenantCall(() => tenants.addOrg(body.name, mspId))
      audit(principal, 'org-create', org.name)
      return { id: org.id, name: org.name }
    },
  })

  api.add({
    method: 'get', path: '/api/v1/admin/organisations/:org/domains', tag: 'domains', summary: "An organisation's domains", params: OrgParam,
    response: z.object({ items: z.array(Domain_) }),
    run: ({ scope, params }) => ({
      items: (q.domains.all(orgIn(scope, params.org).id) as { name: string; deliver_host: string; deliver_port: number; tag_mode: number; catch_all: number; verify_recipients: number }[]).map((d) => ({
        name: d.name, deliver_to: `${d.deliver_host}:${d.deliver_port}`, tag_mode: !!d.tag_mode, catch_all: !!d.catch_all, verify_recipients: !!d.verify_recipients,
      })),
    }),
  })

  api.add({
    method: 'post', path: '/api/v1/admin/organisations/:org/domains', tag: 'domains', status: 201, summary: 'Accept mail for a domain and deliver it to the customer\'s server', params: OrgParam,
    body: z.object({ name: z.string().describe('domain name'), deliver_to: z.string().describe('HOST[:PORT] of the customer\'s server'), tag_mode: z.boolean().optional(), catch_all: z.boolean().optional() }),
    response: z.object({ name: z.string() }),
    run: ({ principal, scope, params, body }) => {
      const org = orgIn(scope, params.org)
      const d = tenantCall(() => tenants.addDomain(body.name, { org: org.name, deliverTo: body.deliver_to, tagMode: body.tag_mode, catchAll: body.catch_all }))
      audit(principal, 'domain-add', `${d.name} for ${org.name}`)
      return { name: d.name }
    },
  })

  api.add({
    method: 'get', path: '/api/v1/admin/organisations/:org/users', tag: 'users', summary: "An organisation's users, by address, a page at a time", params: OrgParam,
    query: z.object({ after: z.string().optional().describe('the last address of the previous page'), limit: z.coerce.number().int().min(1).max(10_000).optional() }),
    response: z.object({ items: z.array(User_), next: z.string().nullable() }),
    run: ({ scope, params, query }) => {
      const limit = query.limit ?? 1000
      const rows = q.users.all(orgIn(scope, params.org).id, query.after ?? '', limit + 1) as { email: string; display_name: string | null; role: 'user' | 'org_admin'; from_directory: number }[]
      const page = rows.slice(0, limit)
      return { items: page.map((u) => ({ ...u, from_directory: !!u.from_directory })), next: rows.length > limit ? page.at(-1)!.email : null }
    },
  })

  api.add({
    method: 'put', path: '/api/v1/admin/organisations/:org/users', tag: 'users',
    summary: `Make these users exist as given (idempotent: send the same list twice and nothing changes the second time). Up to ${MAX_BULK.toLocaleString('en')} a request, in one transaction; each address must be in one of the organisation's domains.`,
    params: OrgParam,
    body: z.object({ users: z.array(UserPut).max(MAX_BULK) }),
    response: BulkResult,
    run: ({ principal, scope, params, body }) => {
      const org = orgIn(scope, params.org)
      const domains = new Map((q.domains.all(org.id) as { id: number; name: string }[]).map((d) => [d.name, d.id]))
      const r: z.infer<typeof BulkResult> = { created: 0, updated: 0, unchanged: 0, errors: [] }
      const now = Date.now()
      deps.db.transaction(() => {
        body.users.forEach((u, index) => {
          let addr
          try {
            addr = normaliseAddress(u.email)
          } catch (err) {
            return r.errors.push({ index, email: u.email, error: (err as Error).message })
          }
          const domainId = domains.get(addr.domain)
          if (domainId === undefined) return r.errors.push({ index, email: addr.email, error: `${addr.domain} is not a domain of ${org.name}` })
          const have = q.user.get(addr.email) as { id: number; org_id: number; display_name: string | null; role: string } | undefined
          if (have && have.org_id !== org.id) return r.errors.push({ index, email: addr.email, error: 'a user of another organisation' })
          if (!have) {
            if (q.isAlias.get(addr.email)) return r.errors.push({ index, email: addr.email, error: 'an alias already' })
            q.insertUser.run(org.id, domainId, addr.email, u.display_name ?? null, u.role ?? 'user', now)
            return r.created++
          }
          const name = u.display_name === undefined ? have.display_name : u.display_name
          const newRole = u.role ?? have.role
          if (name === have.display_name && newRole === have.role) return r.unchanged++
          q.updateUser.run(name, newRole, have.id)
          r.updated++
        })
      })()
      audit(principal, 'users-bulk', `${org.name}: ${r.created} created, ${r.updated} updated, ${r.errors.length} refused`)
      return r
    },
  })

  api.add({
    method: 'delete', path: '/api/v1/admin/organisations/:org/users/:email', tag: 'users', summary: 'Remove a user (mail to the address is refused unless the domain is catch-all)',
    params: z.object({ org: orgName, email }),
    response: z.object({ removed: z.boolean() }),
    run: ({ principal, scope, params }) => {
      const org = orgIn(scope, params.org)
      const u = tenants.userByEmail(params.email)
      if (!u || u.org_id !== org.id) throw new ApiError(404, `no user ${params.email} in ${org.name}`)
      tenants.removeUser(u.email)
      audit(principal, 'user-remove', u.email)
      return { removed: true }
    },
  })

  api.add({
    method: 'get', path: '/api/v1/admin/organisations/:org/aliases', tag: 'aliases', summary: "An organisation's aliases", params: OrgParam,
    response: z.object({ items: z.array(Alias_) }),
    run: ({ scope, params }) => ({ items: q.aliases.all(orgIn(scope, params.org).id) as z.infer<typeof Alias_>[] }),
  })

  api.add({
    method: 'post', path: '/api/v1/admin/organisations/:org/aliases', tag: 'aliases', status: 201, summary: 'Add an alias: its mail goes to the target user of the same organisation', params: OrgParam,
    body: Alias_,
    response: Alias_,
    run: ({ principal, scope, params, body }) => {
      const org = orgIn(scope, params.org)
      const target = tenants.userByEmail(body.target)
      if (!target || target.org_id !== org.id) throw new ApiError(404, `no user ${body.target} in ${org.name}`)
      const a = tenantCall(() => tenants.addAlias(body.address, target.email))
      audit(principal, 'alias-add', `${a.address} -> ${target.email}`)
      return { address: a.address, target: target.email }
    },
  })

  api.add({
    method: 'get', path: '/api/v1/admin/tracking', tag: 'tracking', summary: 'Where is my mail? Transactions in the token\'s scope, newest first (the tracking centre)',
    query: z.object({
      from: z.string().optional(), to: z.string().optional(), ip: z.string().optional(), queue_id: z.string().optional(), message_id: z.string().optional(),
      since: z.coerce.number().int().optional().describe('ms since the epoch (default: 7 days ago)'), until: z.coerce.number().int().optional(),
      limit: z.coerce.number().int().min(1).max(1000).optional(),
    }),
    response: z.object({ items: z.array(Transaction_) }),
    run: ({ scope, query }) => ({
      items: tracking
        .search({ from: query.from, to: query.to, ip: query.ip, queueId: query.queue_id, messageId: query.message_id, since: query.since, until: query.until, limit: query.limit }, scope)
        .map((t) => ({
          at: t.at, outcome: t.outcome, id: t.id, org: t.org, client_ip: t.clientIp, mail_from: t.mailFrom, subject: t.subject, verdict: t.verdict, refusal: t.refusal,
          recipients: t.recipients.map((r) => ({ address: r.address, state: r.state, detail: r.detail, attempts: r.attempts.map((a) => ({ at: a.at, outcome: a.outcome, code: a.code, response: a.response })) })),
        })),
    }),
  })
  return app
}
