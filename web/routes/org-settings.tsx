/*
 * An organisation's settings, for its admins and those above: the policy form, domains' tag
 * mode and catch-all, digests for all its users, suspending it (MSP and appliance admins
 * only), and switching an admin's session into the organisation's view. Every handler looks
 * the organisation up through the session's scope first: another tenant's is a 404.
 */
import { type Context, Hono } from 'hono'
import type { Db } from '../../appliance/db/database'
import type { Accounts } from '../../appliance/services/accounts'
import { Digests } from '../../appliance/services/digests'
import { type OrgPolicy, type Organisation, TenantError, Tenants } from '../../appliance/services/tenants'
import { type Env, requireLogin } from '../security'

type Page = (c: Context<Env>, orgId: number, status?: 200 | 400, error?: string) => Response | Promise<Response>

function policyFrom(body: Record<string, unknown>): OrgPolicy {
  const num = (k: string) => (body[k] === undefined || body[k] === '' ? undefined : Number(body[k]))
  const mb = num('max_message_mb')
  return {
    spam_threshold: num('spam_threshold'),
    surespam_threshold: num('surespam_threshold'),
    max_message_bytes: mb === undefined ? undefined : Math.round(mb * 1048576),
    archive_retention_days: num('archive_retention_days'),
    quarantine_retention_days: num('quarantine_retention_days'),
    outbound_hourly_limit: num('outbound_hourly_limit'),
    outbound_spam_limit: num('outbound_spam_limit'),
    virus_action: body.virus_action as OrgPolicy['virus_action'],
    attachment_action: body.attachment_action as OrgPolicy['attachment_action'],
    dmarc_action: body.dmarc_action as OrgPolicy['dmarc_action'],
    backscatter_action: body.backscatter_action as OrgPolicy['backscatter_action'],
    allowlist_skips_rbl_delay: body.allowlist_skips_rbl_delay ? 1 : 0,
    learn_outbound: body.learn_outbound ? 1 : 0,
    share_learning: body.share_learning ? 1 : 0,
  }
}

export function orgSettingsRoutes(deps: { db: Db; accounts: Accounts; page: Page; visible: (c: Context<Env>, id: number) => Organisation | undefined }): Hono<Env> {
  const app = new Hono<Env>()
  const tenants = new Tenants(deps.db)
  const admins = requireLogin(['appliance_admin', 'msp_admin'])
  const audit = (c: Context<Env>, action: string, detail: string) => deps.accounts.audit(c.get('session')!.principal, action, detail)

  app.post('/orgs/:id/policy', async (c) => {
    const org = deps.visible(c, Number(c.req.param('id')))
    if (!org) return c.notFound()
    const policy = Object.fromEntries(Object.entries(policyFrom(await c.req.parseBody())).filter(([, v]) => v !== undefined))
    try {
      tenants.setPolicy(org.name, policy)
    } catch (err) {
      if (err instanceof TenantError) return deps.page(c, org.id, 400, err.message)
      throw err
    }
    audit(c, 'org-policy', `${org.name}: ${JSON.stringify(policy)}`)
    return c.redirect(`/orgs/${org.id}?done=policy-saved`, 303)
  })

  app.post('/orgs/:id/suspend', admins, async (c) => {
    const org = deps.visible(c, Number(c.req.param('id')))
    if (!org) return c.notFound()
    const on = (await c.req.parseBody()).suspended === 'on'
    tenants.setSuspended(org.name, on)
    audit(c, on ? 'org-suspend' : 'org-unsuspend', org.name)
    return c.redirect(`/orgs/${org.id}?done=${on ? 'suspended' : 'resumed'}`, 303)
  })

  for (const setting of ['tag-mode', 'catch-all', 'verify-recipients'] as const) {
    app.post(`/orgs/:id/domains/:domain/${setting}`, async (c) => {
      const org = deps.visible(c, Number(c.req.param('id')))
      const d = org && tenants.domainOfOrg(Number(c.req.param('domain')), org.id)
      if (!org || !d) return c.notFound()
      const on = (await c.req.parseBody()).value === 'on'
      if (setting === 'tag-mode') tenants.setTagMode(d.name, on)
      else if (setting === 'catch-all') tenants.setCatchAll(d.name, on)
      else tenants.setVerifyRecipients(d.name, on)
      audit(c, `domain-${setting}`, `${d.name} ${on ? 'on' : 'off'}`)
      return c.redirect(`/orgs/${org.id}?done=${setting}&n=${on ? 1 : 0}`, 303)
    })
  }

  // Digests stay off for new accounts; an admin may switch them for everyone at once.
  app.post('/orgs/:id/digests', async (c) => {
    const org = deps.visible(c, Number(c.req.param('id')))
    if (!org) return c.notFound()
    const on = (await c.req.parseBody()).value === 'on'
    const n = deps.db.prepare(`UPDATE users SET digest_enabled = ? WHERE org_id = ?`).run(on ? 1 : 0, org.id).changes
    audit(c, 'org-digests', `${org.name}: ${on ? 'on' : 'off'} for ${n} users`)
    return c.redirect(`/orgs/${org.id}?done=digests&n=${n}`, 303)
  })

  // The address digests come from; empty: quarantine@ the organisation's first domain.
  app.post('/orgs/:id/digest-sender', async (c) => {
    const org = deps.visible(c, Number(c.req.param('id')))
    if (!org) return c.notFound()
    const address = String((await c.req.parseBody()).address ?? '').trim()
    try {
      new Digests(deps.db).setSender(org.id, address || null)
    } catch (err) {
      if (err instanceof TenantError) return deps.page(c, org.id, 400, err.message)
      throw err
    }
    audit(c, 'org-digest-sender', `${org.name}: ${address || 'default'}`)
    return c.redirect(`/orgs/${org.id}?done=digest-sender`, 303)
  })

  // "Switch into" an organisation: the quarantine, archive, lists and statistics then show
  // only it, as its own admin would see them, until the admin leaves it.
  app.post('/orgs/:id/view', admins, (c) => {
    const org = deps.visible(c, Number(c.req.param('id')))
    if (!org) return c.notFound()
    deps.accounts.setView(c.get('session')!, org.id)
    audit(c, 'org-view', org.name)
    return c.redirect('/quarantine', 303)
  })
  app.post('/view/leave', admins, (c) => {
    deps.accounts.setView(c.get('session')!, null)
    return c.redirect('/orgs', 303)
  })
  return app
}
