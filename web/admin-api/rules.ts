/*
 * Outbreak rules (who + what + action), in the condition language of `moat rule add`.
 * Appliance-wide rules (no organisation) are the appliance admin's; other admins see them and
 * change only the rules of organisations in their scope, as on the Rules page.
 */
import { z } from 'zod'
import type { Scope } from '../../appliance/services/accounts'
import { RULE_ACTIONS, type Rule, RuleError, Rules } from '../../appliance/services/rules'
import type { ApiContext } from './context'
import { ApiError } from './define'

const Rule_ = z.object({
  name: z.string(),
  description: z.string(),
  org: z.string().nullable().describe('null: every organisation on the appliance'),
  direction: z.enum(['in', 'out', 'both']),
  what: z.unknown().describe('the condition, as `moat rule add` takes it'),
  action: z.enum(RULE_ACTIONS),
  score: z.number(),
  enabled: z.boolean(),
  matches: z.number().int(),
  last_match_at: z.number().nullable(),
})
const NameParam = z.object({ name: z.string().regex(/^[A-Z][A-Z0-9_]{1,62}$/, 'a rule name: UPPER_SNAKE') })

export function ruleEndpoints({ api, db, tenants, call, audit }: ApiContext): void {
  const rules = new Rules(db)
  const inScope = (scope: Scope, orgId: number | null) => (orgId === null ? scope.orgIds === null : scope.orgIds === null || scope.orgIds.includes(orgId))
  const view = (r: Rule & { org: string | null }): z.infer<typeof Rule_> => ({
    name: r.name, description: r.description, org: r.org, direction: r.direction, what: r.what, action: r.action, score: r.score, enabled: r.enabled, matches: r.matches, last_match_at: r.last_match_at,
  })
  /** A rule this token may change; another organisation's is a 404, an appliance-wide one a 403. */
  const editable = (scope: Scope, name: string) => {
    const r = rules.list().find((x) => x.name === name)
    if (!r || (r.org_id !== null && !inScope(scope, r.org_id))) throw new ApiError(404, `no rule ${name}`)
    if (!inScope(scope, r.org_id)) throw new ApiError(403, `${name} is an appliance-wide rule: only the appliance admin changes it`)
    return r
  }

  api.add({
    method: 'get', path: '/api/v1/admin/rules', tag: 'rules', summary: 'The rules that apply to the organisations in scope, with how often each matched',
    response: z.object({ items: z.array(Rule_) }),
    run: ({ scope }) => ({ items: rules.list().filter((r) => r.org_id === null || inScope(scope, r.org_id)).map(view) }),
  })

  api.add({
    method: 'post', path: '/api/v1/admin/rules', tag: 'rules', status: 201, summary: 'Add a rule; a name in use is a 409',
    body: z.object({
      name: NameParam.shape.name, description: z.string().max(500).optional(), org: z.string().nullable().optional().describe('the organisation; leave out for appliance-wide (appliance admin)'),
      direction: z.enum(['in', 'out', 'both']).optional(), what: z.unknown(), action: z.enum(RULE_ACTIONS), score: z.number().optional(), enabled: z.boolean().optional(),
    }),
    response: Rule_,
    run: ({ principal, scope, body }) => {
      const org = body.org ? tenants.orgByName(body.org) : null
      if (body.org && (!org || !inScope(scope, org.id))) throw new ApiError(404, `no organisation "${body.org}"`)
      if (!org && !inScope(scope, null)) throw new ApiError(403, 'only the appliance admin adds appliance-wide rules; name an organisation')
      const r = call(() => rules.add({ ...body, org: org?.name ?? null }), RuleError)
      audit(principal, 'rule-add', r.name)
      return view({ ...r, org: org?.name ?? null })
    },
  })

  api.add({
    method: 'patch', path: '/api/v1/admin/rules/:name', tag: 'rules', summary: 'Switch a rule on or off', params: NameParam,
    body: z.object({ enabled: z.boolean() }),
    response: Rule_,
    run: ({ principal, scope, params, body }) => {
      const r = editable(scope, params.name)
      rules.setEnabled(r.name, body.enabled)
      audit(principal, body.enabled ? 'rule-enable' : 'rule-disable', r.name)
      return view({ ...r, enabled: body.enabled })
    },
  })

  api.add({
    method: 'delete', path: '/api/v1/admin/rules/:name', tag: 'rules', summary: 'Remove a rule', params: NameParam,
    response: z.object({ removed: z.boolean() }),
    run: ({ principal, scope, params }) => {
      const r = editable(scope, params.name)
      rules.remove(r.name)
      audit(principal, 'rule-remove', r.name)
      return { removed: true }
    },
  })
}
