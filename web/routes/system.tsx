/*
 * The appliance admin's system page: whether each service answers, queue sizes, disk and
 * database, antivirus, version; and the settings changed at run time: the second-factor
 * policy for admins and the TLS certificate (an uploaded certificate and key are checked to
 * belong together and replace the self-signed pair; the services load it when restarted);
 * and backup (a download made while the services run) and restore (an upload, checked and
 * staged; it takes effect when the services restart); a software update (an uploaded
 * release, its signature checked here and applied by the root moat-update unit); and the
 * host name and network (applied by the root moat-system unit).
 */
import { tcpAnswers } from '../../appliance/net/tcp-answers'
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { Readable } from 'node:stream'
import { type Context, Hono } from 'hono'
import { AgentError, enroll } from '../../appliance/agent/agent'
import { agentDir } from '../../appliance/agent/commands'
import { AgentState } from '../../appliance/agent/state'
import { BackupError, createBackup, LAST_BACKUP_SETTING, pendingRestore, stageRestore } from '../../appliance/backups/backup'
import type { Db } from '../../appliance/db/database'
import { type Accounts, REQUIRE_ADMIN_TOTP } from '../../appliance/services/accounts'
import { StoredSettings } from '../../appliance/services/stored-settings'
import { HostSettingsError, hostSettingsFromForm, lastHostSettingsResult, requestFile, requestHostSettings } from '../../appliance/services/host-settings'
import { openRelease, ReleaseError } from '../../appliance/services/release-package'
import { incomingFile, lastUpdateStatus, updatesDir } from '../../appliance/services/updater'
import { type Env, requireLogin } from '../security'
import { HostFields } from '../views/host-fields'
import { Csrf, Layout, when } from '../views/layout'

export interface Probe {
  name: string
  host: string
  port: number
}

function certificateInfo(dataDir: string): { subject: string; validTo: string; selfSigned: boolean } | null {
  try {
    const cert = new crypto.X509Certificate(fs.readFileSync(path.join(dataDir, 'tls/cert.pem')))
    return { subject: cert.subject.replace(/\n/g, ', '), validTo: cert.validTo, selfSigned: fs.existsSync(path.join(dataDir, 'tls/self-signed')) }
  } catch {
    return null
  }
}

export interface SystemDeps {
  db: Db
  accounts: Accounts
  version: string
  antivirus: string
  dataDir?: string
  hostname: string
  probes: Probe[]
  hostSettings: boolean
  releaseKeys: string | null
}

/** This appliance's own agent: enrolled where, and what it has not sent yet (null: not enrolled). */
function fleetEnrollment(dataDir: string): { consoleUrl: string; hostId: number; pin: string; pending: number } | null {
  const dir = agentDir(dataDir)
  if (!fs.existsSync(path.join(dir, 'agent.db'))) return null
  const state = new AgentState(dir)
  try {
    const id = state.identity()
    return id ? { consoleUrl: id.consoleUrl, hostId: id.hostId, pin: id.pin, pending: state.pending() } : null
  } finally {
    state.close()
  }
}

export function systemRoutes(deps: SystemDeps): Hono<Env> {
  const app = new Hono<Env>()
  const settings = new StoredSettings(deps.db)
  const only = requireLogin(['appliance_admin'])
  app.use('/status', only)
  app.use('/system/*', only)
  const one = (sql: string) => (deps.db.prepare(sql).get() as { n: number }).n

  const page = async (c: Context<Env>, status: 200 | 400 = 200, message?: { error?: string; ok?: string }, form: Record<string, string> = {}) => {
    const session = c.get('session')!
    const services = await Promise.all(deps.probes.map(async (p) => ({ ...p, up: await tcpAnswers(p.host, p.port) })))
    const queueDir = deps.dataDir ? path.join(deps.dataDir, 'haraka/queue') : null
    const queueFiles = queueDir && fs.existsSync(queueDir) ? fs.readdirSync(queueDir).filter((f) => !f.startsWith('.')).length : null
    const disk = deps.dataDir ? fs.statfsSync(deps.dataDir) : null
    const dbBytes = one(`SELECT page_count * page_size AS n FROM pragma_page_count(), pragma_page_size()`)
    const cert = deps.dataDir ? certificateInfo(deps.dataDir) : null
    const lastBackup = settings.get<number | null>(LAST_BACKUP_SETTING, null)
    const rows: [string, string | number][] = [
      ['Organisations', one('SELECT count(*) AS n FROM organisations')],
      ['Domains', one('SELECT count(*) AS n FROM domains')],
      ['Users', one('SELECT count(*) AS n FROM users')],
      ['Archived messages', one('SELECT count(*) AS n FROM messages')],
      ['In the quarantine', one('SELECT count(*) AS n FROM quarantine WHERE released_at IS NULL')],
      ['Deliveries waiting', one(`SELECT count(*) AS n FROM deliveries WHERE state IN ('pending', 'queued', 'deferred') AND held = 0`)],
      ['Deliveries deferred', one(`SELECT count(*) AS n FROM deliveries WHERE state = 'deferred'`)],
      ['Deliveries held (senders held)', one(`SELECT count(*) AS n FROM deliveries WHERE held = 1 AND state = 'pending'`)],
      ['Files in the outbound queue', queueFiles ?? 'unknown'],
      ['Database size', `${(dbBytes / 1048576).toFixed(1)} MB`],
      ['Last backup', lastBackup ? when(lastBackup) : 'none'],
      ['Disk free', disk ? `${((disk.bavail * disk.bsize) / 1073741824).toFixed(1)} GB of ${((disk.blocks * disk.bsize) / 1073741824).toFixed(1)} GB` : 'unknown'],
    ]
    const totp = settings.get(REQUIRE_ADMIN_TOTP, true)
    const pending = deps.dataDir ? pendingRestore(deps.dataDir) : null
    const update = deps.dataDir ? lastUpdateStatus(deps.dataDir) : null
    const updateWaiting = deps.dataDir ? fs.existsSync(incomingFile(deps.dataDir)) : false
    const hostResult = deps.dataDir ? lastHostSettingsResult(deps.dataDir) : null
    const hostWaiting = deps.dataDir ? fs.existsSync(requestFile(deps.dataDir)) : false
    const fleet = deps.dataDir ? fleetEnrollment(deps.dataDir) : null
    return c.html(
      <Layout title="Status" session={session}>
        <h1>Moat {deps.version}</h1>
        {message?.error && <p class="error" role="alert">{message.error}</p>}
        {message?.ok && <p class="ok" role="status">{message.ok}</p>}
        <h2>Services</h2>
        <table id="services">
          <tbody>
            <tr><th>Web interface</th><td>up</td></tr>
            {services.map((s) => <tr><th>{s.name} ({s.host}:{s.port})</th><td class={s.up ? '' : 'error'}>{s.up ? 'up' : 'DOWN'}</td></tr>)}
            <tr><th>Antivirus</th><td>{deps.antivirus}</td></tr>
          </tbody>
        </table>
        <p><a href="/system/jobs">Scheduled jobs</a>: what runs when, and running one now.</p>
        <h2>Queues and storage</h2>
        <table id="status">
          <tbody>{rows.map(([k, v]) => <tr><th>{k}</th><td class="num">{v}</td></tr>)}</tbody>
        </table>
        <h2>Settings</h2>
        <form method="post" action="/system/settings" class="policy">
          <Csrf session={session} />
          <label class="check"><input type="checkbox" name="require_admin_totp" value="1" checked={totp} /> Appliance and MSP admins must use a second factor (TOTP)</label>
          <button type="submit">Save settings</button>
        </form>
        <h2>TLS certificate</h2>
        <p>{cert ? `${cert.subject}, valid until ${cert.validTo}${cert.selfSigned ? ' (self-signed, made by the appliance)' : ''}` : 'No certificate.'}</p>
        <form method="post" action="/system/certificate" enctype="multipart/form-data" class="policy">
          <Csrf session={session} />
          <label>Certificate (PEM, with its chain) <input type="file" name="cert" required /></label>
          <label>Private key (PEM) <input type="file" name="key" required /></label>
          <button type="submit">Install certificate</button>
        </form>
        <h2>Backup and restore</h2>
        <p>Everything the appliance holds: configuration, users, quarantine, archive, keys, certificate, mail not yet delivered.</p>
        <p><a href="/system/backup" download>Download a backup</a> · <a href="/system/backups">Nightly backups, the copy off the box, and restoring a kept one</a></p>
        {pending && <p class="banner" role="status">A restore of the backup of {pending.hostname} from {when(pending.created_at)} is staged: it replaces the current data when the services restart.</p>}
        <form method="post" action="/system/restore" enctype="multipart/form-data" class="policy">
          <Csrf session={session} />
          <label>Backup file (.tar.gz) <input type="file" name="backup" required /></label>
          <button type="submit">Check and stage restore</button>
        </form>
        <p class="muted">Very large backups are better restored with <code>moat restore FILE</code> on the appliance.</p>
        <h2>Software update</h2>
        <p id="update-status">Running Moat {deps.version}.{update && ` Last update ${when(update.at)}: ${update.state} — ${update.message}.`}</p>
        {updateWaiting && <p class="banner" role="status">An uploaded release is waiting to be applied; the services restart while it is.</p>}
        {deps.releaseKeys && deps.dataDir && (
          <form method="post" action="/system/update" enctype="multipart/form-data" class="policy">
            <Csrf session={session} />
            <label>Release file (.moat, signed) <input type="file" name="release" required /></label>
            <button type="submit">Check and apply update</button>
          </form>
        )}
        <p class="muted">Or on the appliance: <code>moat update FILE</code>, <code>moat update --url URL</code>. A release that does not come up healthy is rolled back.</p>
        {deps.hostSettings && deps.dataDir && (
          <>
            <h2>Host name and network</h2>
            <p id="host-status">This appliance is {deps.hostname}.{hostResult && ` Last change ${when(hostResult.at)}: ${hostResult.ok ? 'applied' : `NOT applied: ${hostResult.error}`}.`}{hostWaiting && ' A change is being applied.'}</p>
            <form method="post" action="/system/host" class="policy">
              <Csrf session={session} />
              <HostFields values={{ hostname: deps.hostname, ...form }} />
              <button type="submit">Apply</button>
            </form>
          </>
        )}
        {deps.dataDir && (
          <>
            <h2 id="fleet-console">Fleet console</h2>
            {fleet ? (
              <p id="fleet-enrollment">Enrolled as host {fleet.hostId} of {fleet.consoleUrl} (console key {fleet.pin}); {fleet.pending} reports waiting to be sent.</p>
            ) : (
              <p id="fleet-enrollment" class="muted">Not enrolled: an MSP's fleet console sees this appliance once it is enrolled with a token from that console.</p>
            )}
            <form method="post" action="/system/agent" class="policy">
              <Csrf session={session} />
              <label>Console URL <input name="console" type="url" placeholder="https://console.msp.example" value={form.console ?? ''} required /></label>
              <label>Enrollment token <input name="token" required autocomplete="off" /></label>
              <label>Console key pin (from the install line; blank: the key it shows now) <input name="pin" value={form.pin ?? ''} /></label>
              <button type="submit">{fleet ? 'Enroll again' : 'Enroll'}</button>
            </form>
          </>
        )}
        <p class="muted">Shown at {when(Date.now())}.</p>
      </Layout>,
      status,
    )
  }

  app.get('/status', (c) => page(c))

  app.post('/system/agent', async (c) => {
    if (!deps.dataDir) return c.notFound()
    const body = await c.req.parseBody()
    const form = { console: String(body.console ?? '').trim(), pin: String(body.pin ?? '').trim() }
    const state = new AgentState(agentDir(deps.dataDir))
    try {
      const r = await enroll(state, form.console, { token: String(body.token ?? '').trim(), kind: 'appliance', version: deps.version, name: deps.hostname, pin: form.pin || undefined })
      deps.accounts.audit(c.get('session')!.principal, 'fleet-agent-enroll', `host ${r.hostId} at ${form.console}`)
      return page(c, 200, { ok: `Enrolled as host ${r.hostId}; the agent starts reporting within a minute.` })
    } catch (err) {
      if (!(err instanceof AgentError) && !(err instanceof TypeError)) throw err
      return page(c, 400, { error: err instanceof TypeError ? 'The console URL is not a URL.' : err.message }, form)
    } finally {
      state.close()
    }
  })

  app.post('/system/settings', async (c) => {
    const on = !!(await c.req.parseBody()).require_admin_totp
    settings.set(REQUIRE_ADMIN_TOTP, on)
    deps.accounts.audit(c.get('session')!.principal, 'setting', `${REQUIRE_ADMIN_TOTP}=${on}`)
    return page(c, 200, { ok: 'Settings saved.' })
  })

  app.post('/system/certificate', async (c) => {
    if (!deps.dataDir) return page(c, 400, { error: 'This appliance has no data folder for certificates.' })
    const body = await c.req.parseBody()
    const certPem = body.cert instanceof File ? await body.cert.text() : ''
    const keyPem = body.key instanceof File ? await body.key.text() : ''
    try {
      const cert = new crypto.X509Certificate(certPem)
      const key = crypto.createPrivateKey(keyPem)
      if (!cert.checkPrivateKey(key)) throw new Error('the private key does not belong to the certificate')
      if (Date.parse(cert.validTo) < Date.now()) throw new Error(`the certificate expired on ${cert.validTo}`)
    } catch (err) {
      return page(c, 400, { error: `Certificate not installed: ${(err as Error).message}` })
    }
    const dir = path.join(deps.dataDir, 'tls')
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
    // Key first, each written whole and renamed into place, so a crash leaves a usable pair.
    for (const [name, text, mode] of [['key.pem', keyPem, 0o600], ['cert.pem', certPem, 0o644]] as const) {
      const tmp = path.join(dir, `.${name}.new`)
      fs.writeFileSync(tmp, text, { mode })
      fs.renameSync(tmp, path.join(dir, name))
    }
    // An admin's certificate is never renewed or replaced by the appliance.
    fs.rmSync(path.join(dir, 'self-signed'), { force: true })
    deps.accounts.audit(c.get('session')!.principal, 'tls-certificate', new crypto.X509Certificate(certPem).subject.replace(/\n/g, ', '))
    return page(c, 200, { ok: 'Certificate installed. Restart the SMTP and web services to use it.' })
  })

  app.get('/system/backup', async (c) => {
    if (!deps.dataDir) return c.notFound()
    const file = path.join(deps.dataDir, `.download-${crypto.randomBytes(6).toString('hex')}.tar.gz`)
    let m
    try {
      m = await createBackup(deps.db, deps.dataDir, file, { version: deps.version, hostname: deps.hostname })
    } catch (err) {
      fs.rmSync(file, { force: true })
      throw err
    }
    deps.accounts.audit(c.get('session')!.principal, 'backup', `schema ${m.schema}`)
    const size = fs.statSync(file).size
    const stream = fs.createReadStream(file)
    // Unlinked once open: the download reads it to the end and nothing is left behind.
    stream.once('open', () => fs.rmSync(file, { force: true }))
    c.header('Content-Type', 'application/gzip')
    c.header('Content-Length', String(size))
    c.header('Content-Disposition', `attachment; filename="moat-backup-${deps.hostname.replace(/[^a-z0-9.-]/gi, '_')}-${new Date(m.created_at).toISOString().slice(0, 10)}.tar.gz"`)
    return c.body(Readable.toWeb(stream) as ReadableStream)
  })

  app.post('/system/restore', async (c) => {
    if (!deps.dataDir) return page(c, 400, { error: 'This appliance has no data folder.' })
    const upload = (await c.req.parseBody()).backup
    if (!(upload instanceof File) || upload.size === 0) return page(c, 400, { error: 'Choose a backup file.' })
    const file = path.join(deps.dataDir, `.upload-${crypto.randomBytes(6).toString('hex')}.tar.gz`)
    try {
      fs.writeFileSync(file, Buffer.from(await upload.arrayBuffer()))
      const m = await stageRestore(deps.dataDir, file)
      deps.accounts.audit(c.get('session')!.principal, 'restore-staged', `backup of ${m.hostname} from ${new Date(m.created_at).toISOString()}`)
      return page(c, 200, { ok: `The backup of ${m.hostname} from ${when(m.created_at)} is checked and staged. Restart the services to restore it.` })
    } catch (err) {
      if (err instanceof BackupError) return page(c, 400, { error: `Not restored: ${err.message}` })
      throw err
    } finally {
      fs.rmSync(file, { force: true })
    }
  })
  app.post('/system/update', async (c) => {
    if (!deps.dataDir || !deps.releaseKeys) return page(c, 400, { error: 'Updates are not set up on this appliance.' })
    const upload = (await c.req.parseBody()).release
    if (!(upload instanceof File) || upload.size === 0) return page(c, 400, { error: 'Choose a release file.' })
    const dir = updatesDir(deps.dataDir)
    fs.mkdirSync(dir, { recursive: true })
    const file = path.join(dir, `.upload-${crypto.randomBytes(6).toString('hex')}.moat`)
    const work = `${file}.check`
    try {
      fs.writeFileSync(file, Buffer.from(await upload.arrayBuffer()))
      // Checked here for a clear answer; the root unit checks it again before applying it.
      const { info } = await openRelease(file, deps.releaseKeys, work)
      fs.renameSync(file, incomingFile(deps.dataDir))
      deps.accounts.audit(c.get('session')!.principal, 'update-uploaded', info.version)
      return page(c, 200, { ok: `Release ${info.version} is signed and intact; it is being applied. The services restart, and the old release comes back if it fails its health check.` })
    } catch (err) {
      if (err instanceof ReleaseError) return page(c, 400, { error: `Not applied: ${err.message}` })
      throw err
    } finally {
      fs.rmSync(file, { force: true })
      fs.rmSync(work, { recursive: true, force: true })
    }
  })

  app.post('/system/host', async (c) => {
    if (!deps.dataDir || !deps.hostSettings) return c.notFound()
    const body = Object.fromEntries(Object.entries(await c.req.parseBody()).map(([k, v]) => [k, String(v)]))
    try {
      const s = hostSettingsFromForm(body)
      requestHostSettings(deps.dataDir, s)
      deps.accounts.audit(c.get('session')!.principal, 'host-settings', `${s.hostname} ${s.network.mode === 'static' ? `${s.network.address}/${s.network.prefix}` : 'dhcp'}`)
      return page(c, 200, { ok: `Applying: host name ${s.hostname}, ${s.network.mode === 'static' ? `address ${s.network.address}/${s.network.prefix}` : 'DHCP'}. The services restart.` })
    } catch (err) {
      if (err instanceof HostSettingsError) return page(c, 400, { error: `Not changed: ${err.message}` }, body)
      throw err
    }
  })
  return app
}
