/*
 * Settings the shell had alone until now, as forms:
 *   /settings                  the appliance admin's: how long tracking and delivery attempts
 *                              are kept, whether admins must use TOTP, the bounce-stamping
 *                              keys, and where fleet incidents go (mail, webhook);
 *   /orgs/:id/fleet-settings   an organisation's agents (schedules, which log lines) and its
 *                              fleet alert thresholds, for MSP and appliance admins.
 * Each form checks what it is given with the same code as its `moat` command.
 */
import { type Context, Hono } from 'hono'
import type { Db } from '../../appliance/db/database'
import { ALERT_MAIL_SETTING, type AlertMail, setAlertMail } from '../../appliance/fleet/alert-mail'
import { Fleet } from '../../appliance/fleet/console'
import { FleetError } from '../../appliance/fleet/errors'
import { DEFAULT_RULES, type Rules, rulesFor, setRules, WEBHOOK_SETTING } from '../../appliance/fleet/watch'
import { DELIVERY_ATTEMPT_DAYS, DELIVERY_ATTEMPT_DAYS_SETTING, RetentionError, setRetentionDays } from '../../appliance/jobs/retention'
import { type Accounts, REQUIRE_ADMIN_TOTP } from '../../appliance/services/accounts'
import { BounceKeys } from '../../appliance/services/bounce-keys'
import { StoredSettings } from '../../appliance/services/stored-settings'
import type { Organisation } from '../../appliance/services/tenants'
import { trackingDays } from '../../appliance/tracking/search'
import { type Env, requireLogin } from '../security'
import { Csrf, Done, doneOf, Layout, when } from '../views/layout'

class SettingError extends Error {}

const RULE_FIELDS: { key: keyof Rules; label: string }[] = [
  { key: 'offlineMinutes', label: 'A host not heard from for (minutes)' },
  { key: 'diskPercent', label: 'Its fullest file system over (%)' },
  { key: 'queueOver', label: "An appliance's mail waiting for delivery over" },
  { key: 'certificateDays', label: "An appliance's certificate expiring within (days)" },
  { key: 'backupDays', label: "An appliance's last backup older than (days)" },
]

export function settingsRoutes(deps: { db: Db; accounts: Accounts; visible: (c: Context<Env>, id: number) => Organisation | undefined }): Hono<Env> {
  const app = new Hono<Env>()
  const settings = new StoredSettings(deps.db)
  const bounceKeys = new BounceKeys(deps.db)
  const fleet = new Fleet(deps.db)
  const applianceAdmin = requireLogin(['appliance_admin'])
  const mspAdmins = requireLogin(['appliance_admin', 'msp_admin'])
  const audit = (c: Context<Env>, action: string, detail: string) => deps.accounts.audit(c.get('session')!.principal, action, detail)
  /** Runs a change; its checks' errors become the page's error. */
  const attempt = async (c: Context<Env>, page: (status: 400, error: string) => Response | Promise<Response>, change: () => string): Promise<Response> => {
    try {
      return c.redirect(change(), 303)
    } catch (err) {
      if (err instanceof SettingError || err instanceof FleetError || err instanceof RetentionError) return page(400, err.message)
      throw err
    }
  }

  const page = (c: Context<Env>, status: 200 | 400 = 200, error?: string) => {
    const session = c.get('session')!
    const mail = settings.get<AlertMail | null>(ALERT_MAIL_SETTING, null)
    return c.html(
      <Layout title="Settings" session={session}>
        <h1>Settings</h1>
        <Done {...doneOf(c)} />
        {error && <p class="error" role="alert">{error}</p>}
        <h2>How long records are kept</h2>
        <form method="post" action="/settings/retention" class="policy" id="retention">
          <Csrf session={session} />
          <label>Refusals in the tracking centre (0: record none) <input type="number" name="tracking_days" min="0" max="3650" value={String(trackingDays(deps.db))} /></label>
          <label>Each delivery attempt (the hourly roll-up stays 400 days) <input type="number" name="delivery_days" min="1" max="3650" value={String(settings.get(DELIVERY_ATTEMPT_DAYS_SETTING, DELIVERY_ATTEMPT_DAYS))} /></label>
          <div class="actions"><button type="submit">Save retention</button></div>
        </form>
        <h2>Sign-in</h2>
        <form method="post" action="/settings/totp" class="policy" id="totp">
          <Csrf session={session} />
          <label class="check"><input type="checkbox" name="required" checked={settings.get(REQUIRE_ADMIN_TOTP, true)} /> Appliance and MSP admins must use a second factor (TOTP)</label>
          <div class="actions"><button type="submit">Save sign-in</button></div>
        </form>
        <h2>Bounce stamps</h2>
        <p class="muted">Outbound mail is stamped so that bounces of mail Moat never sent (backscatter) can be told apart. A new key stamps from now on; older keys go on checking bounces until their stamps expire.</p>
        <table id="bounce-keys">
          <thead><tr><th>Key</th><th>Made</th><th>Retired</th></tr></thead>
          <tbody>{bounceKeys.list().map((k) => <tr><td>{k.id}</td><td>{when(k.created_at)}</td><td>{k.retired_at ? when(k.retired_at) : <strong>stamping</strong>}</td></tr>)}</tbody>
        </table>
        <form method="post" action="/settings/bounce-keys" class="actions"><Csrf session={session} /><button type="submit">Make a new key</button></form>
        <p><a href="/fingerprints">Campaign fingerprints</a>: what the fuzzy filter learned, and withdrawing a reporter's words.</p>
        <p><a href="/classifier">The classifier</a>: the model in use, testing messages, teaching it from files, and its users' reports.</p>
        <h2>Fleet incidents</h2>
        <form method="post" action="/settings/fleet-incidents" class="policy" id="fleet-incidents">
          <Csrf session={session} />
          <label>Mail them to (addresses, comma-separated; empty: nobody) <input name="mail" value={mail?.to.join(', ') ?? ''} placeholder="noc@msp.example" /></label>
          <label>POST them as JSON to (empty: nowhere) <input name="webhook" type="url" value={settings.get<string | null>(WEBHOOK_SETTING, null) ?? ''} placeholder="https://tickets.msp.example/hooks/moat" /></label>
          <div class="actions"><button type="submit">Save incidents</button></div>
        </form>
      </Layout>,
      status,
    )
  }

  app.get('/settings', applianceAdmin, (c) => page(c))
  app.post('/settings/retention', applianceAdmin, async (c) => {
    const body = await c.req.parseBody()
    return attempt(c, (s, e) => page(c, s, e), () => {
      // Both checked before either is stored: a bad second value leaves the first unchanged too.
      const [refusals, delivery] = deps.db.transaction(() => [setRetentionDays(deps.db, 'refusals', body.tracking_days), setRetentionDays(deps.db, 'delivery-attempts', body.delivery_days)])()
      audit(c, 'retention', `tracking ${refusals} days, delivery attempts ${delivery} days`)
      return '/settings?done=retention'
    })
  })
  app.post('/settings/totp', applianceAdmin, async (c) => {
    const on = (await c.req.parseBody()).required === 'on'
    settings.set(REQUIRE_ADMIN_TOTP, on)
    audit(c, 'require-totp', on ? 'on' : 'off')
    return c.redirect(`/settings?done=${on ? 'totp-required' : 'totp-optional'}`, 303)
  })
  app.post('/settings/bounce-keys', applianceAdmin, (c) => {
    const id = bounceKeys.rotate()
    audit(c, 'bounce-key-rotate', `key ${id}`)
    return c.redirect('/settings?done=bounce-key', 303)
  })
  app.post('/settings/fleet-incidents', applianceAdmin, async (c) => {
    const body = await c.req.parseBody()
    return attempt(c, (s, e) => page(c, s, e), () => {
      const webhook = String(body.webhook ?? '').trim()
      if (webhook && !/^https?:\/\/\S+$/.test(webhook)) throw new SettingError('The webhook must be an http(s):// URL.')
      const to = String(body.mail ?? '').split(',').map((a) => a.trim()).filter(Boolean)
      setAlertMail(deps.db, to.length ? to : null)
      if (webhook) settings.set(WEBHOOK_SETTING, webhook)
      else settings.remove(WEBHOOK_SETTING)
      audit(c, 'fleet-incidents', `mail ${to.join(', ') || 'off'}, webhook ${webhook || 'off'}`)
      return '/settings?done=fleet-incidents'
    })
  })

  // An organisation's agents and alert thresholds.
  const orgPage = (c: Context<Env>, org: Organisation, status: 200 | 400 = 200, error?: string) => {
    const session = c.get('session')!
    const config = fleet.agentConfigs.get(org.id) ?? {}
    const rules = rulesFor(settings, org.id)
    return c.html(
      <Layout title={`Fleet settings of ${org.name}`} session={session}>
        <h1>Fleet settings of <a href={`/orgs/${org.id}`}>{org.name}</a></h1>
        <Done {...doneOf(c)} />
        {error && <p class="error" role="alert">{error}</p>}
        <h2>What its agents do</h2>
        <p class="muted">Schedules are cron expressions (minute hour day month weekday); empty: the agents' default. Agents follow at their next report.</p>
        <form method="post" action={`/orgs/${org.id}/fleet-settings/agents`} class="policy" id="agents">
          <Csrf session={session} />
          <label>Metrics <input name="metricsCron" value={config.metricsCron ?? ''} placeholder="* * * * *" /></label>
          <label>Inventory <input name="inventoryCron" value={config.inventoryCron ?? ''} placeholder="17 3 * * *" /></label>
          <label>Log lines <input name="logsCron" value={config.logsCron ?? ''} placeholder="* * * * *" /></label>
          <label>Send log lines this urgent or more
            <select name="logPriority">
              <option value="" selected={config.logPriority === undefined}>default (warning)</option>
              {['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug'].map((name, i) => <option value={String(i)} selected={config.logPriority === i}>{i} {name}</option>)}
            </select>
          </label>
          <div class="actions"><button type="submit">Save agents</button></div>
        </form>
        <h2>When an incident opens</h2>
        <form method="post" action={`/orgs/${org.id}/fleet-settings/rules`} class="policy" id="thresholds">
          <Csrf session={session} />
          {RULE_FIELDS.map((f) => <label>{f.label} <input type="number" name={f.key} min="0" step="any" value={String(rules[f.key])} placeholder={String(DEFAULT_RULES[f.key])} /></label>)}
          <div class="actions"><button type="submit">Save thresholds</button></div>
        </form>
      </Layout>,
      status,
    )
  }
  const orgOf = (c: Context<Env>) => deps.visible(c, Number(c.req.param('id')))
  app.get('/orgs/:id/fleet-settings', mspAdmins, (c) => {
    const org = orgOf(c)
    return org ? orgPage(c, org) : c.notFound()
  })
  app.post('/orgs/:id/fleet-settings/agents', mspAdmins, async (c) => {
    const org = orgOf(c)
    if (!org) return c.notFound()
    const body = await c.req.parseBody()
    const text = (k: string) => String(body[k] ?? '').trim() || null
    return attempt(c, (s, e) => orgPage(c, org, s, e), () => {
      const config = fleet.agentConfigs.set(org.id, {
        metricsCron: text('metricsCron'), inventoryCron: text('inventoryCron'), logsCron: text('logsCron'),
        logPriority: text('logPriority') === null ? null : Number(body.logPriority),
      })
      audit(c, 'fleet-settings', `${org.name}: ${JSON.stringify(config)}`)
      return `/orgs/${org.id}/fleet-settings?done=fleet-agents`
    })
  })
  app.post('/orgs/:id/fleet-settings/rules', mspAdmins, async (c) => {
    const org = orgOf(c)
    if (!org) return c.notFound()
    const body = await c.req.parseBody()
    return attempt(c, (s, e) => orgPage(c, org, s, e), () => {
      const change: { [K in keyof Rules]?: number | null } = {}
      for (const f of RULE_FIELDS) {
        const v = String(body[f.key] ?? '').trim()
        change[f.key] = v === '' ? null : Number(v)
      }
      const rules = setRules(settings, org.id, change)
      audit(c, 'fleet-rules', `${org.name}: ${JSON.stringify(rules)}`)
      return `/orgs/${org.id}/fleet-settings?done=fleet-thresholds`
    })
  })
  return app
}
