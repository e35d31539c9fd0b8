/*
 * An organisation's policy: spam thresholds, sizes, retention, outbound limits and what
 * happens to viruses, dangerous attachments, DMARC failures and unstamped bounces. PATCH
 * changes only the fields sent; the same checks as the UI's form and `moat org policy` apply
 * (Tenants.setPolicy), so the API cannot store what the UI would refuse.
 */
import { z } from 'zod'
import { ATTACHMENT_ACTIONS, BACKSCATTER_ACTIONS, DMARC_ACTIONS, type Organisation, VIRUS_ACTIONS } from '../../appliance/services/tenants'
import type { ApiContext } from './context'
import { OrgParam } from './organisations'

const positive = z.number().int().positive()
const Policy_ = z.object({
  spam_threshold: z.number().describe('score from which mail is spam'),
  surespam_threshold: z.number().describe('score from which mail is surespam (not below spam_threshold)'),
  max_message_bytes: positive,
  archive_retention_days: positive,
  quarantine_retention_days: positive,
  outbound_hourly_limit: positive.describe('messages a sender may send an hour before being held'),
  outbound_spam_limit: positive.describe('spam messages a sender may send an hour before being held'),
  virus_action: z.enum(VIRUS_ACTIONS as [string, ...string[]]),
  attachment_action: z.enum(ATTACHMENT_ACTIONS as [string, ...string[]]),
  dmarc_action: z.enum(DMARC_ACTIONS as [string, ...string[]]),
  backscatter_action: z.enum(BACKSCATTER_ACTIONS as [string, ...string[]]),
  allowlist_skips_rbl_delay: z.boolean(),
  learn_outbound: z.boolean().describe("users' outbound mail teaches what wanted mail looks like"),
  share_learning: z.boolean().describe("what this organisation's users teach protects the MSP's other customers"),
})

const view = (o: Organisation): z.infer<typeof Policy_> => ({
  spam_threshold: o.spam_threshold, surespam_threshold: o.surespam_threshold, max_message_bytes: o.max_message_bytes,
  archive_retention_days: o.archive_retention_days, quarantine_retention_days: o.quarantine_retention_days,
  outbound_hourly_limit: o.outbound_hourly_limit, outbound_spam_limit: o.outbound_spam_limit,
  virus_action: o.virus_action, attachment_action: o.attachment_action, dmarc_action: o.dmarc_action, backscatter_action: o.backscatter_action,
  allowlist_skips_rbl_delay: !!o.allowlist_skips_rbl_delay, learn_outbound: !!o.learn_outbound, share_learning: !!o.share_learning,
})

export function policyEndpoints({ api, tenants, orgIn, call, audit }: ApiContext): void {
  api.add({
    method: 'get', path: '/api/v1/admin/organisations/:org/policy', tag: 'policies', summary: "The organisation's policy", params: OrgParam,
    response: Policy_,
    run: ({ scope, params }) => view(orgIn(scope, params.org)),
  })

  api.add({
    method: 'patch', path: '/api/v1/admin/organisations/:org/policy', tag: 'policies', summary: 'Change some of the policy: only the fields sent change', params: OrgParam,
    body: Policy_.partial().strict(),
    response: Policy_,
    run: ({ principal, scope, params, body }) => {
      const org = orgIn(scope, params.org)
      const flags = Object.fromEntries((['allowlist_skips_rbl_delay', 'learn_outbound', 'share_learning'] as const).filter((k) => body[k] !== undefined).map((k) => [k, body[k] ? 1 : 0]))
      const next = call(() => tenants.setPolicy(org.name, { ...body, ...flags } as Parameters<typeof tenants.setPolicy>[1]))
      audit(principal, 'org-policy', `${org.name}: ${JSON.stringify(body)}`)
      return view(next)
    },
  })
}
