/*
 * Organisations, their domains, users (one by one, paged, and an idempotent bulk PUT of up to
 * 100,000 at a time) and aliases. Only MSP and appliance admins create organisations; an MSP
 * admin's are always its own MSP's.
 */
import { z } from 'zod'
import { Archive } from '../../appliance/services/archive'
import { normaliseAddress } from '../../appliance/services/tenants'
import { removeOrganisation } from '../../appliance/tenancy/removal'
import { type ApiContext, MSP_ROLES } from './context'
import { ApiError } from './define'

export const MAX_BULK = 100_000

export const orgName = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'an organisation name: a-z 0-9 . _ -').describe('organisation name')
export const email = z.string().min(3).max(254).describe('e-mail address')
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
export const OrgParam = z.object({ org: orgName })

export function organisationEndpoints(ctx: ApiContext): void {
  const { api, db: dbx, tenants, orgIn, domainIn, only, call, audit } = ctx
  const q = {
    orgs: dbx.prepare(
      `SELECT o.id, o.name, m.name AS msp, o.suspended_at,
         (SELECT count(*) FROM domains d WHERE d.org_id = o.id) AS domains, (SELECT count(*) FROM users u WHERE u.org_id = o.id) AS users
       FROM organisations o JOIN msps m ON m.id = o.msp_id ORDER BY o.name`,
    ),
    domains: dbx.prepare(`SELECT * FROM domains WHERE org_id = ? ORDER BY name`),
    users: dbx.prepare(`SELECT email, display_name, role, from_directory FROM users WHERE org_id = ? AND email > ? ORDER BY email LIMIT ?`),
    user: dbx.prepare(`SELECT id, org_id, display_name, role FROM users WHERE email = ?`),
    isAlias: dbx.prepare(`SELECT 1 FROM aliases WHERE address = ?`).pluck(),
    insertUser: dbx.prepare(`INSERT INTO users (org_id, domain_id, email, display_name, role, created_at) VALUES (?, ?, ?, ?, ?, ?)`),
    updateUser: dbx.prepare(`UPDATE users SET display_name = ?, role = ? WHERE id = ?`),
    aliases: dbx.prepare(`SELECT a.address, u.email AS target FROM aliases a JOIN users u ON u.id = a.user_id WHERE a.org_id = ? ORDER BY a.address`),
  }

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
      only(principal, MSP_ROLES, 'create organisations')
      const mspId = principal.role === 'msp_admin' ? principal.mspId! : body.msp ? call(() => tenants.msp(body.msp!).id) : undefined
      const org = call(() => tenants.addOrg(body.name, mspId))
      audit(principal, 'org-create', org.name)
      return { id: org.id, name: org.name }
    },
  })

  api.add({
    method: 'delete', path: '/api/v1/admin/organisations/:org', tag: 'organisations', params: OrgParam,
    summary: 'Remove an organisation for good (MSP and appliance admins): its domains, users, quarantine and archive. Suspended first; accepted mail not yet delivered is dropped',
    response: z.object({ removed: z.boolean(), messages: z.number().int().describe('archived messages deleted with it') }),
    run: async ({ principal, scope, params }) => {
      only(principal, MSP_ROLES, 'remove organisations')
      const org = orgIn(scope, params.org)
      const messages = await removeOrganisation(dbx, new Archive(dbx, ctx.raws), org.name)
      audit(principal, 'org-remove', `${org.name} with ${messages} archived messages`)
      return { removed: true, messages }
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
      const d = call(() => tenants.addDomain(body.name, { org: org.name, deliverTo: body.deliver_to, tagMode: body.tag_mode, catchAll: body.catch_all }))
      audit(principal, 'domain-add', `${d.name} for ${org.name}`)
      return { name: d.name }
    },
  })

  api.add({
    method: 'delete', path: '/api/v1/admin/organisations/:org/domains/:domain', tag: 'domains', summary: "Stop accepting mail for a domain; its users and aliases go with it, its archived mail stays",
    params: z.object({ org: orgName, domain: z.string() }),
    response: z.object({ removed: z.boolean() }),
    run: ({ principal, scope, params }) => {
      const org = orgIn(scope, params.org)
      const d = domainIn(org, params.domain)
      tenants.removeDomain(d.name)
      audit(principal, 'domain-remove', `${d.name} from ${org.name}`)
      return { removed: true }
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
      dbx.transaction(() => {
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
      const a = call(() => tenants.addAlias(body.address, target.email))
      audit(principal, 'alias-add', `${a.address} -> ${target.email}`)
      return { address: a.address, target: target.email }
    },
  })
}
