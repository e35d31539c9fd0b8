/*
 * The fleet console: the agents' API (enrollment, signed reports; no session, no cookie) and
 * the Fleet pages, where an MSP sees its customers' appliances and servers and an organisation
 * admin only its own (another tenant's host by id is a 404).
 */
import { type Context, Hono } from 'hono'
import type { Db } from '../../appliance/db/database'
import { Fleet, FleetError, type Host, type SortKey, SORTS } from '../../appliance/fleet/console'
import { BUNDLE_KEY_HEADER, BUNDLE_SIGNATURE_HEADER, type CommandKind, ENROLL_PATH, FINGERPRINTS_PATH, HOST_HEADER, MAX_BODY_BYTES, REPORTS_PATH, SIGNATURE_HEADER } from '../../appliance/fleet/protocol'
import { PRIORITY_NAMES } from '../../appliance/fleet/logs'
import { RANGES, type Range } from '../../appliance/fleet/metrics'
import { type Env, requireLogin } from '../security'
import { MetricPlots } from '../views/fleet-plots'
import { Csrf, Done, doneOf, Layout, when } from '../views/layout'

async function bodyText(c: Context): Promise<string> {
  const declared = Number(c.req.header('content-length') ?? 0)
  if (declared > MAX_BODY_BYTES) throw new FleetError(`the body is over ${MAX_BODY_BYTES} bytes`, 413)
  const buf = Buffer.from(await c.req.arrayBuffer())
  if (buf.length > MAX_BODY_BYTES) throw new FleetError(`the body is over ${MAX_BODY_BYTES} bytes`, 413)
  return buf.toString('utf8')
}

function problem(c: Context, err: unknown) {
  if (err instanceof FleetError) return c.json({ error: err.message, ...(err.lastSeq !== undefined ? { lastSeq: err.lastSeq } : {}) }, err.status)
  throw err
}

/** The agents' API: mounted before the session and CSRF layers (agents sign, they have no cookie). */
export function fleetApiRoutes(db: Db): Hono {
  const app = new Hono()
  const fleet = new Fleet(db)
  app.post(ENROLL_PATH, async (c) => {
    try {
      const body = await bodyText(c)
      let req: unknown
      try {
        req = JSON.parse(body)
      } catch {
        throw new FleetError('the body is not JSON')
      }
      return c.json(fleet.enroll(req as Parameters<Fleet['enroll']>[0]), 201)
    } catch (err) {
      return problem(c, err)
    }
  })
  app.post(REPORTS_PATH, async (c) => {
    try {
      const hostId = Number(c.req.header(HOST_HEADER))
      if (!Number.isSafeInteger(hostId) || hostId <= 0) throw new FleetError(`the ${HOST_HEADER} header is missing`, 401)
      const body = await bodyText(c)
      return c.json(fleet.ingest(hostId, c.req.header(SIGNATURE_HEADER) ?? '', 'POST', REPORTS_PATH, body))
    } catch (err) {
      return problem(c, err)
    }
  })
  // What the MSP's other appliances learned, for an appliance to use beside its own (signed GET).
  app.get(FINGERPRINTS_PATH, (c) => {
    try {
      const hostId = Number(c.req.header(HOST_HEADER))
      if (!Number.isSafeInteger(hostId) || hostId <= 0) throw new FleetError(`the ${HOST_HEADER} header is missing`, 401)
      const url = new URL(c.req.url)
      const host = fleet.authenticate(hostId, c.req.header(SIGNATURE_HEADER) ?? '', 'GET', url.pathname + url.search, '')
      if (host.kind !== 'appliance') throw new FleetError('only appliances learn from the fleet', 403)
      const since = Number(url.searchParams.get('since') ?? 0)
      if (!Number.isSafeInteger(since) || since < 0) throw new FleetError('since must be a version number')
      const b = fleet.learning.signedBundle(hostId, since)
      return c.body(b.body, 200, { 'Content-Type': 'application/json', [BUNDLE_SIGNATURE_HEADER]: b.signature, [BUNDLE_KEY_HEADER]: b.publicKey })
    } catch (err) {
      return problem(c, err)
    }
  })
  return app
}

const pct = (used: number, size: number) => (size > 0 ? `${Math.round((100 * used) / size)} %` : '—')

const percent = (v: number | null) => (v === null ? '—' : `${Math.round(v)} %`)
/** Hosts on a page of the Fleet list. */
const PAGE = 100

interface Health {
  queue?: { pending: number; queued: number; deferred: number }
  quarantined?: number
  certificateExpires?: number | null
  blocklisted?: { ip: string; zone: string }[]
  openAlerts?: number
  mailInLastMinute?: number
  spamLastMinute?: number
  lastBackupAt?: number | null
  services?: Record<string, string> | null
}

function MailHealth({ health }: { health: Health }) {
  return (
    <>
      <h2>Mail health</h2>
      <table id="health">
        <tbody>
          <tr><td>Mail in the last minute</td><td>{`${health.mailInLastMinute ?? 0} (${health.spamLastMinute ?? 0} spam)`}</td></tr>
          <tr><td>Delivery queue</td><td>{health.queue ? `${health.queue.pending} pending, ${health.queue.queued} queued, ${health.queue.deferred} deferred` : '—'}</td></tr>
          <tr><td>Quarantine</td><td>{String(health.quarantined ?? '—')}</td></tr>
          <tr><td>Certificate expires</td><td>{health.certificateExpires ? when(health.certificateExpires) : '—'}</td></tr>
          <tr><td>On blocklists</td><td>{health.blocklisted?.length ? health.blocklisted.map((b) => `${b.ip} on ${b.zone}`).join(', ') : 'none'}</td></tr>
          <tr><td>Open alerts</td><td>{String(health.openAlerts ?? 0)}</td></tr>
          <tr><td>Last backup</td><td>{health.lastBackupAt ? when(health.lastBackupAt) : 'none'}</td></tr>
          <tr><td>Services</td><td>{health.services ? Object.entries(health.services).map(([n, st]) => `${n} ${st}`).join(', ') : 'unknown (no systemd)'}</td></tr>
        </tbody>
      </table>
    </>
  )
}

export function fleetRoutes(db: Db): Hono<Env> {
  const app = new Hono<Env>()
  const fleet = new Fleet(db)
  const admins = requireLogin(['appliance_admin', 'msp_admin', 'org_admin'])
  const orgsInScope = (c: Context<Env>) => {
    const scope = c.get('scope')!
    const ids = scope.orgIds
    return (db.prepare(`SELECT id, name FROM organisations ORDER BY name`).all() as { id: number; name: string }[]).filter((o) => ids === null || ids.includes(o.id))
  }

  const listPage = (c: Context<Env>, newToken?: { token: string; org: string }) => {
    const session = c.get('session')!
    const scope = c.get('scope')!
    const q = (c.req.query('q') ?? '').trim().slice(0, 300)
    const offset = Math.max(0, Math.floor(Number(c.req.query('from')) || 0))
    const sort = (Object.keys(SORTS) as SortKey[]).find((k) => k === c.req.query('sort')) ?? 'org'
    let page: ReturnType<Fleet['search']>
    let bad: string | null = null
    try {
      page = fleet.search(scope.orgIds, q, { limit: PAGE, offset, sort })
    } catch (err) {
      if (!(err instanceof FleetError)) throw err
      bad = err.message
      page = fleet.search(scope.orgIds, '', { limit: PAGE, offset: 0 })
    }
    const hosts = page.hosts
    const origin = new URL(c.req.url).origin
    const link = (from: number, by: SortKey = sort) => `/fleet?${new URLSearchParams({ ...(q ? { q } : {}), ...(by !== 'org' ? { sort: by } : {}), from: String(from) })}`
    const th = (label: string, by: SortKey | null, cls?: string) => (
      <th class={cls}>{by === null ? label : by === sort ? <strong>{label}</strong> : <a href={link(0, by)}>{label}</a>}</th>
    )
    return c.html(
      <Layout title="Fleet" session={session}>
        <h1>Fleet</h1>
        <Done {...doneOf(c)} />
        <p id="fleet-counts">
          {(Object.keys(page.counts) as Host['status'][]).map((s) => (
            <a class={`count status-${s}`} href={`/fleet?q=status:${s}`}>{`${page.counts[s]} ${s}`}</a>
          ))}
        </p>
        <form method="get" action="/fleet" class="filters">
          <input name="q" value={q} size={40} placeholder="web01, status:offline, disk>90, version<0.2, software:nginx" />
          <button type="submit">Search</button>
        </form>
        {bad && <p role="alert" class="error">{bad}</p>}
        <table id="hosts">
          <thead>
            <tr>{th('Host', 'host')}{th('Organisation', 'org')}{th('Kind', null)}{th('Status', null)}{th('Version', 'version')}{th('CPU', 'cpu', 'num')}{th('Disk', 'disk', 'num')}{th('Alerts', null, 'num')}{th('Last report', 'last-report')}</tr>
          </thead>
          <tbody>
            {hosts.map((h: Host) => (
              <tr data-id={h.id} class={`status-${h.status}`}>
                <td><a href={`/fleet/hosts/${h.id}`}>{h.name}</a></td>
                <td>{h.org}</td>
                <td>{h.kind}</td>
                <td>{h.status}</td>
                <td>{h.version ?? '—'}</td>
                <td class="num">{percent(h.cpu)}</td>
                <td class="num">{percent(h.disk_use)}</td>
                <td class={`num${h.open_incidents ? ' error' : ''}`}>{String(h.open_incidents ?? 0)}</td>
                <td>{h.last_seen_at ? when(h.last_seen_at) : 'never'}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {page.total > PAGE && (
          <p class="pager">
            {`${offset + 1}–${offset + hosts.length} of ${page.total}`}{' '}
            {offset > 0 && <a href={link(Math.max(0, offset - PAGE))}>previous</a>}{' '}
            {offset + PAGE < page.total && <a href={link(offset + PAGE)} rel="next">next</a>}
          </p>
        )}
        {!hosts.length && <p class="muted">No hosts{q ? ' match' : ' yet: make an enrollment token below and run the install line on the host'}.</p>}
        <h2>Enroll a host</h2>
        {newToken && (
          <div role="status" id="enroll">
            <p>Token for {newToken.org} (shown once):</p>
            <pre>{`moat agent enroll ${origin} --token ${newToken.token}`}</pre>
            <pre>{`moat-agent enroll ${origin} --token ${newToken.token}`}</pre>
            <pre>{`msiexec /i moat-agent.msi /qn CONSOLE_URL=${origin} ENROLL_TOKEN=${newToken.token}`}</pre>
          </div>
        )}
        <form method="post" action="/fleet/tokens" class="filters">
          <Csrf session={session} />
          <select name="org">{orgsInScope(c).map((o) => <option value={String(o.id)}>{o.name}</option>)}</select>
          <input name="uses" inputmode="numeric" placeholder="uses (blank: any)" />
          <input name="expires" inputmode="numeric" value="7" /> days
          <button type="submit">New enrollment token</button>
        </form>
      </Layout>,
    )
  }

  app.get('/fleet', admins, (c) => listPage(c))
  app.post('/fleet/tokens', admins, async (c) => {
    const body = await c.req.parseBody()
    const org = orgsInScope(c).find((o) => o.id === Number(body.org))
    if (!org) return c.notFound()
    try {
      const uses = String(body.uses ?? '').trim()
      const { token } = fleet.createToken(org.id, { uses: uses ? Number(uses) : null, expiresDays: Number(body.expires ?? 7), by: c.get('session')!.principal.email })
      return listPage(c, { token, org: org.name })
    } catch (err) {
      if (err instanceof FleetError) return c.text(err.message, 400)
      throw err
    }
  })
  app.get('/fleet/hosts/:id', admins, (c) => {
    const session = c.get('session')!
    const h = fleet.host(Number(c.req.param('id')), c.get('scope')!.orgIds)
    if (!h) return c.notFound()
    const now = Date.now()
    const range = (Object.keys(RANGES) as Range[]).find((r) => r === c.req.query('range')) ?? '24h'
    const q = (c.req.query('q') ?? '').trim().slice(0, 200)
    const priority = Math.min(7, Math.max(0, Number(c.req.query('priority') ?? 4) || 0))
    const logs = fleet.logs.search(h.id, { q, maxPriority: priority, limit: 100 })
    const inv = (h.inventory ?? {}) as {
      os?: { distro?: string; release?: string; kernel?: string }; cpu?: { brand?: string; cores?: number }; mem?: { total?: number }; fs?: { mount: string; size: number; used: number }[]
      software?: unknown[]; updates?: { name: string; from: string; to: string }[] | null; services?: { name: string; running: boolean }[]; users?: string[]
    }
    return c.html(
      <Layout title={h.name} session={session}>
        <h1>{h.name}</h1>
        <Done {...doneOf(c)} />
        <p>{h.org} · {h.kind} · <strong>{h.status}</strong> · version {h.version ?? '—'} · last report {h.last_seen_at ? when(h.last_seen_at) : 'never'}</p>
        <h2>Now</h2>
        <table id="metrics">
          <tbody>
            <tr><td>CPU</td><td>{percent(h.cpu)}</td></tr>
            <tr><td>Memory</td><td>{percent(h.mem_pct)}</td></tr>
            <tr><td>Fullest disk</td><td>{percent(h.disk_use)}</td></tr>
          </tbody>
        </table>
        <MetricPlots hostId={h.id} series={fleet.metrics.series(h.id, range, now)} now={now} />
        {h.health ? <MailHealth health={h.health as Health} /> : null}
        <h2>Alerts</h2>
        {fleet.incidents(h.id).length ? (
          <table id="incidents">
            <tbody>
              {fleet.incidents(h.id).map((i) => (
                <tr class={i.resolved_at ? 'muted' : 'error'}><td>{i.rule}</td><td>{i.detail}</td><td>{`since ${when(i.opened_at)}`}</td><td>{i.resolved_at ? `resolved ${when(i.resolved_at)}` : 'open'}</td></tr>
              ))}
            </tbody>
          </table>
        ) : (
          <p class="muted" id="incidents">None.</p>
        )}
        <h2>Inventory</h2>
        {h.inventory ? (
          <table id="inventory">
            <tbody>
              <tr><td>System</td><td>{inv.os ? `${inv.os.distro ?? ''} ${inv.os.release ?? ''} (kernel ${inv.os.kernel ?? '?'})` : '—'}</td></tr>
              <tr><td>CPU</td><td>{inv.cpu ? `${inv.cpu.brand ?? ''}, ${inv.cpu.cores ?? '?'} cores` : '—'}</td></tr>
              <tr><td>Memory</td><td>{inv.mem?.total ? `${(inv.mem.total / 2 ** 30).toFixed(1)} GiB` : '—'}</td></tr>
              {(inv.fs ?? []).map((f) => <tr><td>{f.mount}</td><td>{`${(f.size / 2 ** 30).toFixed(1)} GiB, ${pct(f.used, f.size)} used`}</td></tr>)}
              <tr><td>Installed software</td><td>{inv.software ? `${inv.software.length} packages` : '—'}</td></tr>
              <tr><td>Pending updates</td><td id="pending-updates">{inv.updates ? (inv.updates.length ? `${inv.updates.length}: ${inv.updates.slice(0, 12).map((u) => `${u.name} ${u.to}`).join(', ')}${inv.updates.length > 12 ? ' …' : ''}` : 'none') : 'not known on this system'}</td></tr>
              <tr><td>Services</td><td>{inv.services ? `${inv.services.filter((v) => v.running).length} of ${inv.services.length} running` : '—'}</td></tr>
              <tr><td>Signed-in users</td><td>{inv.users?.length ? inv.users.join(', ') : 'none'}</td></tr>
            </tbody>
          </table>
        ) : (
          <p class="muted">No inventory yet.</p>
        )}
        {h.changes && (
          <>
            <h3>Changed since the inventory of {when(h.changes.since)}</h3>
            {h.changes.list.length ? (
              <table id="inventory-changes">
                <thead><tr><th>What</th><th>Before</th><th>Now</th></tr></thead>
                <tbody>
                  {h.changes.list.slice(0, 200).map((ch) => <tr><td>{ch.what}</td><td>{ch.before ?? '—'}</td><td>{ch.after ?? '—'}</td></tr>)}
                </tbody>
              </table>
            ) : (
              <p class="muted" id="inventory-changes">Nothing.</p>
            )}
          </>
        )}
        <h2 id="logs">Logs</h2>
        <form method="get" action={`/fleet/hosts/${h.id}#logs`} class="filters">
          <input name="q" value={q} placeholder="words in the line or its source" />
          <select name="priority">
            {PRIORITY_NAMES.map((p, i) => <option value={String(i)} selected={i === priority}>{`${p} and worse`}</option>)}
          </select>
          <button type="submit">Search</button>
        </form>
        {logs.length ? (
          <table id="log-lines">
            <tbody>
              {logs.map((l) => (
                <tr class={`priority-${l.priority}`}><td>{when(l.at)}</td><td>{PRIORITY_NAMES[l.priority]}</td><td>{l.source}</td><td>{l.message}</td></tr>
              ))}
            </tbody>
          </table>
        ) : (
          <p class="muted">No log lines{q ? ' match' : ' at this priority in the last 14 days'}.</p>
        )}
        <h2>Commands</h2>
        <p class="muted">A command waits here until the host next reports; one that is offline runs it when it is back.</p>
        <table id="commands">
          <tbody>
            {fleet.commands(h.id).map((cmd) => (
              <tr data-id={cmd.id}>
                <td>{cmd.kind}{cmd.arg ? ` ${cmd.arg}` : ''}</td>
                <td>{`${when(cmd.created_at)} by ${cmd.created_by}`}</td>
                <td>
                  {cmd.done_at ? `${cmd.ok ? 'done' : 'failed'} ${when(cmd.done_at)}: ${cmd.output ?? ''}` : 'waiting for the host'}
                  {cmd.output_bytes > (cmd.output?.length ?? 0) && <> <a href={`/fleet/hosts/${h.id}/commands/${cmd.id}/output`} download>{`the whole output (${Math.ceil(cmd.output_bytes / 1024)} KiB)`}</a></>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {h.status !== 'revoked' && (
          <>
            <form method="post" action={`/fleet/hosts/${h.id}/commands`} class="inline"><Csrf session={session} /><input type="hidden" name="kind" value="refresh-inventory" /><button type="submit">Refresh inventory</button></form>
            <form method="post" action={`/fleet/hosts/${h.id}/commands`} class="inline"><Csrf session={session} /><input type="hidden" name="kind" value="collect-logs" /><button type="submit">Collect a log bundle</button></form>
            {h.kind === 'appliance' && (
              <>
                <form method="post" action={`/fleet/hosts/${h.id}/commands`} class="inline"><Csrf session={session} /><input type="hidden" name="kind" value="restart-services" /><button type="submit">Restart Moat's services</button></form>
                <form method="post" action={`/fleet/hosts/${h.id}/commands`} class="inline">
                  <Csrf session={session} /><input type="hidden" name="kind" value="apply-update" />
                  <input name="arg" type="url" required placeholder="https://…/moat-0.2.0.moat" /> <button type="submit">Apply signed release</button>
                </form>
              </>
            )}
            {h.kind === 'appliance' && (() => {
              const l = fleet.learning.status([h.id])[0]
              return (
                <div id="learning">
                  Learning shared with the fleet: {l?.spam ?? 0} spam and {l?.ham ?? 0} ham fingerprints standing, {l?.withdrawn ?? 0} withdrawn, {l?.refused ?? 0} refused as a flood.{' '}
                  {l?.proven
                    ? <>Proven: {l.corroborated} of its words confirmed by other appliances, so its next words count on their own (weakly).{' '}</>
                    : <>Not proven yet ({l?.corroborated ?? 0} confirmed, {l?.contradicted ?? 0} contradicted): its words count only beside another appliance's.{' '}</>}
                  <form method="post" action={`/fleet/hosts/${h.id}/learning/withdraw`} class="inline"><Csrf session={session} /><button type="submit">Withdraw what it shared</button></form>
                </div>
              )
            })()}
            <form method="post" action={`/fleet/hosts/${h.id}/revoke`} class="inline"><Csrf session={session} /><button type="submit">Revoke this host</button></form>
          </>
        )}
      </Layout>,
    )
  })
  app.post('/fleet/hosts/:id/commands', admins, async (c) => {
    const body = await c.req.parseBody()
    try {
      const id = fleet.queueCommand(Number(c.req.param('id')), String(body.kind ?? '') as CommandKind, c.get('scope')!.orgIds, c.get('session')!.principal.email, Date.now(), String(body.arg ?? '').trim() || null)
      if (id === null) return c.notFound()
    } catch (err) {
      if (err instanceof FleetError) return c.text(err.message, 400)
      throw err
    }
    return c.redirect(`/fleet/hosts/${c.req.param('id')}?done=command-queued`, 303)
  })
  app.get('/fleet/hosts/:id/commands/:cid/output', admins, (c) => {
    const out = fleet.commandOutput(Number(c.req.param('id')), Number(c.req.param('cid')), c.get('scope')!.orgIds)
    if (!out) return c.notFound()
    c.header('Content-Disposition', `attachment; filename="host-${Number(c.req.param('id'))}-${out.kind}-${Number(c.req.param('cid'))}.txt"`)
    return c.text(out.output)
  })
  // The MSP takes back everything a host shared (a broken or hostile appliance): it spreads at the next pulls.
  app.post('/fleet/hosts/:id/learning/withdraw', admins, (c) => {
    const h = fleet.host(Number(c.req.param('id')), c.get('scope')!.orgIds)
    if (!h) return c.notFound()
    const n = fleet.learning.withdraw({ hostId: h.id }, null, c.get('session')!.principal.email)
    return c.redirect(`/fleet/hosts/${h.id}?done=learning-withdrawn&n=${n}`, 303)
  })
  app.post('/fleet/hosts/:id/revoke', admins, (c) => {
    if (!fleet.revokeHost(Number(c.req.param('id')), c.get('scope')!.orgIds)) return c.notFound()
    return c.redirect('/fleet?done=host-revoked', 303)
  })
  return app
}
