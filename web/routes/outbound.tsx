/*
 * Outbound mail in the UI, what `moat relay|route|domain dkim|sender|rbl` do on the shell:
 *   /orgs/:id/outbound   per organisation: DKIM per domain with the DNS record to publish,
 *                        held senders (hold, release), and the customer servers allowed to
 *                        relay (MSP and appliance admins only: a wrong network is an open relay);
 *   /outbound            the appliance admin's: transport routes (a smarthost for every domain,
 *                        or a host for one) and the own-IP blocklist watch.
 * Another tenant's domain, sender or network by id is a 404, as everywhere.
 */
import { type Context, Hono } from 'hono'
import type { Db } from '../../appliance/db/database'
import type { Accounts } from '../../appliance/services/accounts'
import { Dkim, zoneLine } from '../../appliance/services/dkim'
import { OutboundSenders } from '../../appliance/services/outbound-senders'
import { parseZones, RblWatch } from '../../appliance/services/rbl-watch'
import { RelayControl } from '../../appliance/services/relay'
import { type Organisation, TenantError, Tenants } from '../../appliance/services/tenants'
import { Transport } from '../../appliance/services/transport'
import { type Env, requireLogin } from '../security'
import { Csrf, Done, doneOf, Layout, when } from '../views/layout'

const MSP_ROLES: ('appliance_admin' | 'msp_admin')[] = ['appliance_admin', 'msp_admin']

export function outboundRoutes(deps: { db: Db; accounts: Accounts; visible: (c: Context<Env>, id: number) => Organisation | undefined; dnsServer: string | null }): Hono<Env> {
  const app = new Hono<Env>()
  const tenants = new Tenants(deps.db)
  const relay = new RelayControl(deps.db)
  const senders = new OutboundSenders(deps.db)
  const transport = new Transport(deps.db)
  const dkimKeys = deps.db.prepare(`SELECT id, name, dkim_selector, dkim_private_key IS NOT NULL AS has_key, dkim_enabled FROM domains WHERE org_id = ? ORDER BY name`)
  const audit = (c: Context<Env>, action: string, detail: string) => deps.accounts.audit(c.get('session')!.principal, action, detail)
  const orgAdmins = requireLogin(['appliance_admin', 'msp_admin', 'org_admin'])
  app.use('/orgs/:id/outbound', orgAdmins)
  app.use('/orgs/:id/outbound/*', orgAdmins)

  const orgPage = (c: Context<Env>, org: Organisation, status: 200 | 400 = 200, error?: string) => {
    const session = c.get('session')!
    const msp = (MSP_ROLES as string[]).includes(session.principal.role)
    const domains = dkimKeys.all(org.id) as { id: number; name: string; dkim_selector: string | null; has_key: number; dkim_enabled: number }[]
    const dkim = new Dkim(deps.db)
    const held = senders.list(false, org.id)
    const networks = relay.listNetworks(org.id)
    return c.html(
      <Layout title={`Outbound mail of ${org.name}`} session={session}>
        <h1>Outbound mail of <a href={`/orgs/${org.id}`}>{org.name}</a></h1>
        <Done {...doneOf(c)} />
        {error && <p class="error" role="alert">{error}</p>}
        <h2>DKIM</h2>
        <table id="dkim">
          <tbody>
            {domains.map((d) => {
              const info = d.has_key ? dkim.info(d.name) : null
              return (
                <tr data-id={d.id}>
                  <td>{d.name}</td>
                  <td>
                    {info ? (
                      <>
                        <p>Publish: <code>{zoneLine(info)}</code></p>
                        <p>Signing: <strong>{info.enabled ? 'on' : 'off'}</strong></p>
                      </>
                    ) : (
                      <span class="muted">no key yet</span>
                    )}
                  </td>
                  <td>
                    <form method="post" action={`/orgs/${org.id}/outbound/dkim/${d.id}`} class="inline">
                      <Csrf session={session} />
                      {!info && <><input type="hidden" name="do" value="make" /><button type="submit">Make a key</button></>}
                      {info && !info.enabled && <><input type="hidden" name="do" value="enable" /><button type="submit">Sign (the record is published)</button></>}
                      {info && info.enabled && <><input type="hidden" name="do" value="disable" /><button type="submit">Stop signing</button></>}
                    </form>
                    {info && (
                      <form method="post" action={`/orgs/${org.id}/outbound/dkim/${d.id}`} class="inline">
                        <Csrf session={session} /><input type="hidden" name="do" value="rotate" /><button type="submit">New key</button>
                      </form>
                    )}
                  </td>
                </tr>
              )
            })}
          </tbody>
        </table>
        <h2>Held senders</h2>
        <p class="muted">A sender sending too much, or too much spam, is held: their mail waits here, not sent, until released.</p>
        <table id="held">
          <tbody>
            {held.map((h) => (
              <tr data-id={h.id}>
                <td>{h.address}</td>
                <td>{h.reason}</td>
                <td>{when(h.held_at)}</td>
                <td><form method="post" action={`/orgs/${org.id}/outbound/senders/${h.id}/release`} class="inline"><Csrf session={session} /><button type="submit">Release</button></form></td>
              </tr>
            ))}
          </tbody>
        </table>
        {!held.length && <p class="muted">No sender is held.</p>}
        <form method="post" action={`/orgs/${org.id}/outbound/senders`} class="filters">
          <Csrf session={session} />
          <input name="address" type="email" placeholder="sender address" required />
          <input name="reason" placeholder="why (optional)" />
          <button type="submit">Hold sender</button>
        </form>
        <h2>Mail servers that relay through Moat</h2>
        <table id="networks">
          <tbody>
            {networks.map((n) => (
              <tr data-id={n.id}>
                <td>{n.cidr}</td>
                <td>{n.description}</td>
                <td>{msp && <form method="post" action={`/orgs/${org.id}/outbound/networks/${n.id}/delete`} class="inline"><Csrf session={session} /><button type="submit">Remove</button></form>}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {!networks.length && <p class="muted">None: only users signing in with SMTP AUTH send through Moat.</p>}
        {msp ? (
          <form method="post" action={`/orgs/${org.id}/outbound/networks`} class="filters">
            <Csrf session={session} />
            <input name="cidr" placeholder="192.0.2.10/32" required />
            <input name="description" placeholder="what it is (optional)" />
            <button type="submit">Allow to relay</button>
          </form>
        ) : (
          <p class="muted">Your MSP adds the networks allowed to relay.</p>
        )}
      </Layout>,
      status,
    )
  }

  const orgOf = (c: Context<Env>) => deps.visible(c, Number(c.req.param('id')))
  app.get('/orgs/:id/outbound', (c) => {
    const org = orgOf(c)
    return org ? orgPage(c, org) : c.notFound()
  })

  app.post('/orgs/:id/outbound/dkim/:domain', async (c) => {
    const org = orgOf(c)
    const d = org && tenants.listDomains().find((x) => x.id === Number(c.req.param('domain')) && x.org_id === org.id)
    if (!org || !d) return c.notFound()
    const what = String((await c.req.parseBody()).do ?? '')
    if (!['make', 'enable', 'disable', 'rotate'].includes(what)) return orgPage(c, org, 400, 'Unknown DKIM action.')
    new Dkim(deps.db).info(d.name, { enable: what === 'enable' ? true : what === 'disable' ? false : undefined, rotate: what === 'rotate' })
    audit(c, `dkim-${what}`, d.name)
    return c.redirect(`/orgs/${org.id}/outbound?done=dkim-${what}`, 303)
  })

  app.post('/orgs/:id/outbound/senders', async (c) => {
    const org = orgOf(c)
    if (!org) return c.notFound()
    const body = await c.req.parseBody()
    const address = String(body.address ?? '').trim().toLowerCase()
    try {
      senders.hold(org.id, address, String(body.reason ?? '').trim().slice(0, 200) || `held by ${c.get('session')!.principal.email}`)
    } catch (err) {
      if (err instanceof TenantError) return orgPage(c, org, 400, err.message)
      throw err
    }
    audit(c, 'sender-hold', `${address} of ${org.name}`)
    return c.redirect(`/orgs/${org.id}/outbound?done=sender-held`, 303)
  })

  app.post('/orgs/:id/outbound/senders/:hid/release', (c) => {
    const org = orgOf(c)
    const h = org && senders.list(false, org.id).find((x) => x.id === Number(c.req.param('hid')))
    if (!org || !h) return c.notFound()
    const n = senders.release(h.address, org.name)
    audit(c, 'sender-release', `${h.address} of ${org.name}: ${n} deliveries`)
    return c.redirect(`/orgs/${org.id}/outbound?done=sender-released&n=${n}`, 303)
  })

  app.post('/orgs/:id/outbound/networks', requireLogin(MSP_ROLES), async (c) => {
    const org = orgOf(c)
    if (!org) return c.notFound()
    const body = await c.req.parseBody()
    try {
      const n = relay.addNetwork(org.name, String(body.cidr ?? ''), String(body.description ?? '').slice(0, 200))
      audit(c, 'relay-add', `${n.cidr} for ${org.name}`)
    } catch (err) {
      if (err instanceof TenantError) return orgPage(c, org, 400, err.message)
      throw err
    }
    return c.redirect(`/orgs/${org.id}/outbound?done=relay-added`, 303)
  })

  app.post('/orgs/:id/outbound/networks/:nid/delete', requireLogin(MSP_ROLES), (c) => {
    const org = orgOf(c)
    const n = org && relay.listNetworks(org.id).find((x) => x.id === Number(c.req.param('nid')))
    if (!org || !n) return c.notFound()
    relay.removeNetwork(n.cidr)
    audit(c, 'relay-remove', `${n.cidr} of ${org.name}`)
    return c.redirect(`/orgs/${org.id}/outbound?done=relay-removed`, 303)
  })

  // The appliance's own: where outbound mail goes, and whether its addresses are blocklisted.
  const applianceAdmin = requireLogin(['appliance_admin'])
  const page = (c: Context<Env>, status: 200 | 400 = 200, error?: string) => {
    const session = c.get('session')!
    const watch = new RblWatch(deps.db, deps.dnsServer)
    const rbl = watch.status()
    return c.html(
      <Layout title="Outbound routes" session={session}>
        <h1>Outbound routes and blocklists</h1>
        <Done {...doneOf(c)} />
        {error && <p class="error" role="alert">{error}</p>}
        <h2>Routes</h2>
        <p class="muted">Mail for a domain listed here goes to its host instead of the domain's MX; <code>*</code> sends all other mail through a smarthost.</p>
        <table id="routes">
          <tbody>
            {transport.list().map((r) => (
              <tr>
                <td>{r.domain}</td>
                <td>→ {r.host}:{r.port}</td>
                <td><form method="post" action="/outbound/routes/delete" class="inline"><Csrf session={session} /><input type="hidden" name="domain" value={r.domain} /><button type="submit">Remove</button></form></td>
              </tr>
            ))}
          </tbody>
        </table>
        <form method="post" action="/outbound/routes" class="filters">
          <Csrf session={session} />
          <input name="domain" placeholder="example.net or *" required />
          <input name="host" placeholder="host[:port]" required />
          <button type="submit">Add route</button>
        </form>
        <h2>Own addresses on blocklists</h2>
        <p>Watching {rbl.ips.length ? rbl.ips.join(', ') : 'the addresses mail leaves from'} on {rbl.zones} blocklists{rbl.last_check ? `, last checked ${when(Number(rbl.last_check.at))}` : ''}.</p>
        <table id="listed">
          <tbody>
            {rbl.listed.map((l) => (
              <tr><td>{String(l.ip)}</td><td>{String(l.zone)}</td><td>{when(Number(l.listed_at ?? 0))}</td></tr>
            ))}
          </tbody>
        </table>
        {!rbl.listed.length && <p class="muted">Not listed anywhere.</p>}
        <form method="post" action="/outbound/rbl/check" class="actions">
          <Csrf session={session} />
          <button type="submit">Check now</button>
          <span class="muted">The check runs by itself every 30 minutes; a new listing raises an alert and holds the sender who sent the most spam.</span>
        </form>
        <h3>Addresses watched</h3>
        <form method="post" action="/outbound/rbl/ips" class="policy" id="rbl-ips">
          <Csrf session={session} />
          <label class="check"><input type="checkbox" name="auto" checked={!watch.ipsChosen()} /> This machine's public addresses (found by itself)</label>
          <label>Or these addresses, the ones mail leaves from (behind NAT, the public ones): <input name="ips" value={watch.ipsChosen() ? rbl.ips.join(' ') : ''} placeholder="203.0.113.25 2001:db8::25" /></label>
          <div class="actions"><button type="submit">Save addresses</button></div>
        </form>
        <h3>Blocklists watched</h3>
        <form method="post" action="/outbound/rbl/zones" class="policy" id="rbl-zones">
          <Csrf session={session} />
          <label>One zone a line{watch.zonesChosen() ? '' : ' (the shipped list)'}: <textarea name="zones" rows={8}>{watch.zones().join('\n')}</textarea></label>
          <div class="actions">
            <button type="submit" name="do" value="save">Save blocklists</button>
            {watch.zonesChosen() && <button type="submit" name="do" value="shipped">Back to the shipped list</button>}
          </div>
        </form>
        {!!rbl.history.length && (
          <>
            <h3>History</h3>
            <table id="rbl-history">
              <thead><tr><th>Address</th><th>List</th><th>Listed</th><th>Delisted</th></tr></thead>
              <tbody>
                {rbl.history.map((h) => (
                  <tr><td>{String(h.ip)}</td><td>{String(h.zone)}</td><td>{when(Number(h.listed_at))}</td><td>{h.delisted_at ? when(Number(h.delisted_at)) : <strong>listed</strong>}</td></tr>
                ))}
              </tbody>
            </table>
          </>
        )}
      </Layout>,
      status,
    )
  }
  app.get('/outbound', applianceAdmin, (c) => page(c))
  app.post('/outbound/routes', applianceAdmin, async (c) => {
    const body = await c.req.parseBody()
    try {
      const r = transport.add(String(body.domain ?? ''), String(body.host ?? ''))
      audit(c, 'route-add', `${r.domain} -> ${r.host}:${r.port}`)
    } catch (err) {
      if (err instanceof TenantError) return page(c, 400, err.message)
      throw err
    }
    return c.redirect('/outbound?done=route-added', 303)
  })
  app.post('/outbound/rbl/check', applianceAdmin, async (c) => {
    const r = await new RblWatch(deps.db, deps.dnsServer).run()
    audit(c, 'rbl-check', `${r.ips.length} addresses x ${r.zones} lists: ${r.listed.length} listed, ${r.errors} unreachable`)
    return c.redirect(`/outbound?done=rbl-checked&n=${r.listed.length}`, 303)
  })
  app.post('/outbound/rbl/ips', applianceAdmin, async (c) => {
    const body = await c.req.parseBody()
    const ips = String(body.ips ?? '').split(/[\s,]+/).filter(Boolean)
    const watch = new RblWatch(deps.db, deps.dnsServer)
    try {
      if (body.auto === 'on' && ips.length) return page(c, 400, 'Either this machine\'s addresses or the ones given, not both.')
      if (body.auto !== 'on' && !ips.length) return page(c, 400, 'Name the addresses to watch, or tick "this machine\'s public addresses".')
      watch.setIps(body.auto === 'on' ? null : ips)
    } catch (err) {
      if (err instanceof TenantError) return page(c, 400, err.message)
      throw err
    }
    audit(c, 'rbl-watch', watch.ips().join(' ') || '(none found)')
    return c.redirect('/outbound?done=rbl-ips', 303)
  })
  app.post('/outbound/rbl/zones', applianceAdmin, async (c) => {
    const body = await c.req.parseBody()
    const watch = new RblWatch(deps.db, deps.dnsServer)
    try {
      watch.setZones(body.do === 'shipped' ? null : parseZones(String(body.zones ?? '').replace(/\r/g, '')))
    } catch (err) {
      if (err instanceof TenantError) return page(c, 400, err.message)
      throw err
    }
    audit(c, 'rbl-zones', body.do === 'shipped' ? 'the shipped list' : `${watch.zones().length} zones`)
    return c.redirect('/outbound?done=rbl-zones', 303)
  })
  app.post('/outbound/routes/delete', applianceAdmin, async (c) => {
    const domain = String((await c.req.parseBody()).domain ?? '')
    try {
      transport.remove(domain)
    } catch (err) {
      if (err instanceof TenantError) return page(c, 400, err.message)
      throw err
    }
    audit(c, 'route-remove', domain)
    return c.redirect('/outbound?done=route-removed', 303)
  })
  return app
}
