/*
 * Allow and block lists: an organisation's own, or one of its users' (user: the address).
 * Adding is idempotent (the same entry twice is one entry), and a bulk PUT adds many at once
 * with the bad rows named by index, as the users' PUT does.
 */
import { z } from 'zod'
import { normalisePattern, SenderLists } from '../../appliance/services/sender-lists'
import type { ApiContext } from './context'
import { ApiError } from './define'
import { email, OrgParam, orgName } from './organisations'

const MAX_LIST_BULK = 10_000
const kind = z.enum(['allow', 'block'])
const Entry_ = z.object({ id: z.number().int(), kind, pattern: z.string(), user: z.string().nullable().describe("the user whose own list it is; null: the organisation's"), created_at: z.number() })
const EntryIn = z.object({
  kind,
  pattern: z.string().min(2).max(254).describe('sender@example.net, or @example.net for a domain and its subdomains'),
  user: email.optional().describe("a user of the organisation, for that user's own list"),
})

export function listEndpoints({ api, db, tenants, orgIn, call, audit }: ApiContext): void {
  const lists = new SenderLists(db)
  const view = (e: { id: number; kind: 'allow' | 'block'; pattern: string; user: string | null; created_at: number }) => ({ id: e.id, kind: e.kind, pattern: e.pattern, user: e.user, created_at: e.created_at })
  /** The user's id, if the address is a user of this organisation; otherwise a 404. */
  const userOf = (orgId: number, orgName: string, address: string | undefined): number | null => {
    if (address === undefined) return null
    const u = tenants.userByEmail(address)
    if (!u || u.org_id !== orgId) throw new ApiError(404, `no user ${address} in ${orgName}`)
    return u.id
  }

  api.add({
    method: 'get', path: '/api/v1/admin/organisations/:org/lists', tag: 'lists', summary: "The organisation's allow and block lists, and its users' own", params: OrgParam,
    response: z.object({ items: z.array(Entry_) }),
    run: ({ scope, params }) => {
      const org = orgIn(scope, params.org)
      return { items: lists.list(org.id).map(view) }
    },
  })

  api.add({
    method: 'post', path: '/api/v1/admin/organisations/:org/lists', tag: 'lists', status: 201,
    summary: 'Allow or block a sender (idempotent: an entry already there is answered as it is)', params: OrgParam, body: EntryIn,
    response: Entry_,
    run: ({ principal, scope, params, body }) => {
      const org = orgIn(scope, params.org)
      const e = call(() => lists.add(org.id, userOf(org.id, org.name, body.user), body.kind, body.pattern))
      audit(principal, 'list-add', `${e.kind} ${e.pattern} for ${e.user ?? e.org}`)
      return view(e)
    },
  })

  api.add({
    method: 'put', path: '/api/v1/admin/organisations/:org/lists', tag: 'lists',
    summary: `Add many entries at once, up to ${MAX_LIST_BULK.toLocaleString('en')}, in one transaction (idempotent: those already there are counted as unchanged)`,
    params: OrgParam, body: z.object({ entries: z.array(EntryIn).max(MAX_LIST_BULK) }),
    response: z.object({ created: z.number().int(), unchanged: z.number().int(), errors: z.array(z.object({ index: z.number().int(), pattern: z.string(), error: z.string() })) }),
    run: ({ principal, scope, params, body }) => {
      const org = orgIn(scope, params.org)
      const users = new Map<string, number | null>()
      const errors: { index: number; pattern: string; error: string }[] = []
      const good: { userId: number | null; kind: 'allow' | 'block'; pattern: string }[] = []
      body.entries.forEach((e, index) => {
        try {
          normalisePattern(e.pattern)
          const key = e.user ?? ''
          if (!users.has(key)) users.set(key, userOf(org.id, org.name, e.user))
          good.push({ userId: users.get(key)!, kind: e.kind, pattern: e.pattern })
        } catch (err) {
          errors.push({ index, pattern: e.pattern, error: (err as Error).message })
        }
      })
      const r = lists.addMany(org.id, good)
      audit(principal, 'lists-bulk', `${org.name}: ${r.created} added, ${errors.length} refused`)
      return { ...r, errors }
    },
  })

  api.add({
    method: 'delete', path: '/api/v1/admin/organisations/:org/lists/:id', tag: 'lists', summary: 'Remove an entry',
    params: z.object({ org: orgName, id: z.coerce.number().int() }),
    response: z.object({ removed: z.boolean() }),
    run: ({ principal, scope, params }) => {
      const org = orgIn(scope, params.org)
      const e = lists.get(params.id)
      if (!e || e.org_id !== org.id) throw new ApiError(404, `no list entry ${params.id} in ${org.name}`)
      lists.remove(e.id)
      audit(principal, 'list-remove', `${e.kind} ${e.pattern} for ${e.user ?? e.org}`)
      return { removed: true }
    },
  })
}
