/*
 * First start: while no admin exists, the one-time link printed in the log and on the
 * appliance's console (/setup?token=…) opens a short wizard — the appliance admin, and
 * optionally the first organisation, its domain and the customer's mail server, and the MSP's
 * fleet console to enroll into — so an installer needs no shell. Once an admin exists the page is gone (404).
 */
import { Hono } from 'hono'
import { AgentError, enroll } from '../../appliance/agent/agent'
import { agentDir } from '../../appliance/agent/commands'
import { AgentState } from '../../appliance/agent/state'
import type { Db } from '../../appliance/db/database'
import type { Accounts } from '../../appliance/services/accounts'
import { type HostSettings, HostSettingsError, hostSettingsFromForm, requestHostSettings } from '../../appliance/services/host-settings'
import { TenantError, Tenants } from '../../appliance/services/tenants'
import type { Env } from '../security'
import { HostFields } from '../views/host-fields'
import { Layout } from '../views/layout'

export interface SetupOptions {
  /** Offer host name and network (the image, where a root unit applies them). */
  hostSettings?: { dataDir: string; hostname: string } | null
  /** Offer enrollment into an MSP's fleet console (this appliance's own agent). */
  agent?: { dataDir: string; version: string; hostname: string } | null
  onDone?: () => void
}

function SetupPage(props: { token: string; error?: string; values?: Record<string, string>; host: SetupOptions['hostSettings']; fleet?: boolean }) {
  const v = props.values ?? {}
  return (
    <Layout title="Set up" session={null}>
      <form method="post" action="/setup" class="login">
        <h1>Set up Moat</h1>
        {props.error && <p class="error" role="alert">{props.error}</p>}
        <input type="hidden" name="token" value={props.token} />
        <h2>Appliance admin</h2>
        <label>E-mail <input type="email" name="email" autocomplete="username" required value={v.email ?? ''} /></label>
        <label>Password (10 characters or more) <input type="password" name="password" autocomplete="new-password" minlength={10} required /></label>
        <h2>First organisation (optional)</h2>
        <label>Organisation <input name="org" placeholder="acme" value={v.org ?? ''} /></label>
        <label>Its mail domain <input name="domain" placeholder="example.com" value={v.domain ?? ''} /></label>
        <label>Its mail server (host[:port]) <input name="deliver_to" placeholder="mail.example.com:25" value={v.deliver_to ?? ''} /></label>
        <label><input type="checkbox" name="catch_all" value="on" checked={v.catch_all === 'on'} /> Accept every address of the domain (until users are imported)</label>
        {props.host && <HostFields values={{ hostname: props.host.hostname, ...v }} />}
        {props.fleet && (
          <>
            <h2>MSP fleet console (optional)</h2>
            <label>Console URL <input name="console" type="url" placeholder="https://console.msp.example" value={v.console ?? ''} /></label>
            <label>Enrollment token <input name="console_token" autocomplete="off" /></label>
          </>
        )}
        <button type="submit">Set up</button>
      </form>
    </Layout>
  )
}

function AppliedPage(props: { host: HostSettings | null; fleet: string | null }) {
  const n = props.host?.network
  const where = n?.mode === 'static' ? `https://${n.address}/login` : null
  return (
    <Layout title="Set up" session={null}>
      <h1>Moat is set up</h1>
      {props.host && n && <p role="status">The appliance is now called <strong>{props.host.hostname}</strong> and {n.mode === 'static' ? `moves to ${n.address}` : 'takes its address from DHCP'}; its services restart with these settings.</p>}
      {props.fleet && <p id="fleet-enrollment" role="status">{props.fleet}</p>}
      <p>{where ? <a href={where}>Sign in at {where}</a> : <a href="/login">Sign in</a>}{props.host ? ' in a minute' : ''}.</p>
    </Layout>
  )
}

/** Enrolls this appliance's agent; what to tell the installer either way (null: not asked). */
async function enrollFromSetup(agent: NonNullable<SetupOptions['agent']>, consoleUrl: string, token: string, name: string): Promise<string | null> {
  if (!consoleUrl && !token) return null
  const state = new AgentState(agentDir(agent.dataDir))
  try {
    const r = await enroll(state, consoleUrl, { token, kind: 'appliance', version: agent.version, name })
    return `Enrolled in the fleet console ${consoleUrl} as host ${r.hostId}; it starts reporting within a minute.`
  } catch (err) {
    if (!(err instanceof AgentError) && !(err instanceof TypeError)) throw err
    return `The fleet enrollment did not work (${err instanceof TypeError ? 'the console URL is not a URL' : err.message}); the appliance is set up, enroll it from its Status page.`
  } finally {
    state.close()
  }
}

export function setupRoutes(accounts: Accounts, db: Db, opts: SetupOptions = {}): Hono<Env> {
  const app = new Hono<Env>()
  const host = opts.hostSettings ?? null
  const fleet = !!opts.agent
  app.get('/setup', (c) => (accounts.hasAdmin() ? c.notFound() : c.html(<SetupPage host={host} fleet={fleet} token={c.req.query('token') ?? ''} />)))
  app.post('/setup', async (c) => {
    if (accounts.hasAdmin()) return c.notFound()
    const body = Object.fromEntries(Object.entries(await c.req.parseBody()).map(([k, v]) => [k, String(v)]))
    const org = (body.org ?? '').trim()
    if (!accounts.setupTokenValid(body.token ?? '')) {
      return c.html(<SetupPage host={host} fleet={fleet} token="" error="This setup link is not valid; use the newest one from the console or the log." />, 403)
    }
    const tenants = new Tenants(db)
    let hostSettings: HostSettings | null = null
    try {
      // Checked before anything is created, so a typo in the address changes nothing.
      if (host) hostSettings = hostSettingsFromForm(body)
      // The organisation first (synchronous, validated), so a typo there leaves no half set-up
      // appliance; it is removed again if the admin cannot be created.
      if (org && (!body.domain || !body.deliver_to)) throw new TenantError('give the organisation its domain and mail server, or leave all three empty')
      if (org) db.transaction(() => {
        tenants.addOrg(org)
        tenants.addDomain(body.domain, { org, deliverTo: body.deliver_to, catchAll: body.catch_all === 'on' })
      })()
      try {
        await accounts.setupFirstAdmin(body.token ?? '', body.email ?? '', body.password ?? '')
      } catch (err) {
        if (org) tenants.removeOrg(org)
        throw err
      }
    } catch (err) {
      if (err instanceof TenantError || err instanceof HostSettingsError) return c.html(<SetupPage host={host} fleet={fleet} token={body.token ?? ''} error={err.message} values={body} />, 400)
      throw err
    }
    opts.onDone?.()
    // After the rest: a console that is away does not stop the appliance from being set up.
    const enrolled = opts.agent ? await enrollFromSetup(opts.agent, (body.console ?? '').trim(), (body.console_token ?? '').trim(), hostSettings?.hostname ?? opts.agent.hostname) : null
    if (host && hostSettings) requestHostSettings(host.dataDir, hostSettings)
    if ((host && hostSettings) || enrolled) return c.html(<AppliedPage host={hostSettings} fleet={enrolled} />)
    return c.redirect('/login', 303)
  })
  return app
}
