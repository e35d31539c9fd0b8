/*
 * The appliance admin's backups page: the nightly schedule (when, how many kept, where), the
 * copy off the box over SFTP (the appliance's public key to authorise, the server's host key
 * pinned on the first connection and shown for comparison), the last run's outcome, a backup
 * now, and every kept backup with a button that stages it for restore. The listing on the
 * SFTP server is fetched after the page loads (htmx), so a server that is down does not hold
 * the page up.
 */
import path from 'node:path'
import { type Context, Hono } from 'hono'
import { BackupError } from '../../appliance/backups/backup'
import { type BackupEntry, backupPolicySchema, BackupSchedule } from '../../appliance/backups/schedule'
import { SftpError } from '../../appliance/backups/sftp'
import type { Db } from '../../appliance/db/database'
import type { Accounts } from '../../appliance/services/accounts'
import { type Env, requireLogin } from '../security'
import { Csrf, Layout, when } from '../views/layout'

export interface BackupDeps {
  db: Db
  accounts: Accounts
  dataDir: string
  version: string
  hostname: string
}

const mb = (n: number) => (n < 1048576 ? `${Math.max(1, Math.round(n / 1024))} KB` : `${(n / 1048576).toFixed(1)} MB`)

function KeptTable(props: { rows: BackupEntry[]; csrf: string; id: string }) {
  if (!props.rows.length) return <p id={props.id}>None yet.</p>
  return (
    <table id={props.id}>
      <thead><tr><th>Made</th><th>File</th><th class="num">Size</th><th></th></tr></thead>
      <tbody>
        {props.rows.map((b) => (
          <tr>
            <td>{when(b.at)}</td>
            <td>{b.name}</td>
            <td class="num">{mb(b.size)}</td>
            <td>
              <form method="post" action="/system/backups/restore" class="inline">
                <input type="hidden" name="_csrf" value={props.csrf} />
                <input type="hidden" name="where" value={b.where} />
                <input type="hidden" name="name" value={b.name} />
                <button type="submit">Restore this</button>
              </form>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  )
}

export function backupRoutes(deps: BackupDeps): Hono<Env> {
  const app = new Hono<Env>()
  app.use('/system/backups', requireLogin(['appliance_admin']))
  app.use('/system/backups/*', requireLogin(['appliance_admin']))
  const schedule = () => new BackupSchedule(deps)
  const audit = (c: Context<Env>, action: string, detail: string) => deps.accounts.audit(c.get('session')!.principal, action, detail)

  const page = (c: Context<Env>, status: 200 | 400 = 200, message?: { error?: string; ok?: string }) => {
    const session = c.get('session')!
    const s = schedule()
    const p = s.policy()
    const st = s.status()
    return c.html(
      <Layout title="Backups" session={session}>
        <h1>Backups</h1>
        {message?.error && <p class="error" role="alert">{message.error}</p>}
        {message?.ok && <p class="ok" role="status" id="done">{message.ok}</p>}
        <p id="backup-status" class={st.error ? 'error' : ''}>
          {st.lastOkAt ? `Last good backup ${when(st.lastOkAt)}${st.copiedOff && !st.error ? ', also copied off the box' : ''}.` : 'No scheduled backup has been made yet.'}
          {st.error && ` The last attempt (${when(st.lastAttemptAt as number)}) failed: ${st.error}`}
        </p>
        <h2>Every night</h2>
        <form method="post" action="/system/backups/schedule" class="policy">
          <Csrf session={session} />
          <label class="check"><input type="checkbox" name="enabled" value="1" checked={p.enabled} /> Make a backup every night</label>
          <label>At (appliance time, HH:MM) <input name="time" value={p.time} required pattern="([01][0-9]|2[0-3]):[0-5][0-9]" /></label>
          <label>Keep the newest <input name="keep" type="number" min="1" max="365" value={String(p.keep)} required /></label>
          <label>In the folder (empty: the data folder's backups/) <input name="localDir" value={p.localDir ?? ''} placeholder={path.join(deps.dataDir, 'backups')} /></label>
          <button type="submit">Save schedule</button>
        </form>
        <form method="post" action="/system/backups/now" class="inline">
          <Csrf session={session} />
          <button type="submit">Back up now</button>
        </form>
        <h2>A copy off the box (SFTP)</h2>
        <p>Add this key to the SFTP account's <code>authorized_keys</code>:</p>
        <pre id="backup-key">{s.publicKey()}</pre>
        {p.sftp && (
          <p id="sftp-target">
            Copying to <code>{p.sftp.username}@{p.sftp.host}:{p.sftp.port}:{p.sftp.path}</code>; the server's host key is pinned as <code>{p.sftp.hostKey}</code>.
          </p>
        )}
        <form method="post" action="/system/backups/sftp" class="policy">
          <Csrf session={session} />
          <label>Server <input name="host" value={p.sftp?.host ?? ''} required /></label>
          <label>Port <input name="port" type="number" min="1" max="65535" value={String(p.sftp?.port ?? 22)} required /></label>
          <label>User <input name="username" value={p.sftp?.username ?? ''} required /></label>
          <label>Folder <input name="path" value={p.sftp?.path ?? ''} placeholder="/backups/moat" required /></label>
          <button type="submit">Connect and save</button>
        </form>
        <p class="muted">Saving connects once: it checks the folder can be written and pins the key the server presents. Compare it with <code>ssh-keygen -lf</code> of the server's host key.</p>
        {p.sftp && (
          <form method="post" action="/system/backups/sftp/off" class="inline">
            <Csrf session={session} />
            <button type="submit">Stop copying off the box</button>
          </form>
        )}
        <h2>Kept on the appliance</h2>
        <KeptTable rows={s.listLocal()} csrf={session.csrf} id="kept-local" />
        {p.sftp && (
          <>
            <h2>Kept on the SFTP server</h2>
            <div hx-get="/system/backups/remote" hx-trigger="load" hx-swap="outerHTML" id="kept-remote">Asking the server…</div>
          </>
        )}
        <p class="muted">A restore is checked, then staged: it replaces the current data when the services restart, and the current data is kept beside it.</p>
      </Layout>,
      status,
    )
  }

  app.get('/system/backups', (c) => page(c))

  app.get('/system/backups/remote', async (c) => {
    try {
      return c.html(<KeptTable rows={await schedule().listRemote()} csrf={c.get('session')!.csrf} id="kept-remote" />)
    } catch (err) {
      if (err instanceof SftpError) return c.html(<p id="kept-remote" class="error">{err.message}</p>)
      throw err
    }
  })

  app.post('/system/backups/schedule', async (c) => {
    const b = await c.req.parseBody()
    const s = schedule()
    const dir = String(b.localDir ?? '').trim()
    const checked = backupPolicySchema.safeParse({ ...s.policy(), enabled: b.enabled === '1', time: String(b.time ?? ''), keep: Number(b.keep), localDir: dir || null })
    if (!checked.success) return page(c, 400, { error: `Not saved: ${checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}` })
    s.setPolicy(checked.data)
    const q = checked.data
    audit(c, 'backup-schedule', q.enabled ? `${q.time}, keep ${q.keep}` : 'off')
    return page(c, 200, { ok: q.enabled ? `Saved: a backup every night at ${q.time}, the newest ${q.keep} kept.` : 'Saved: no nightly backups.' })
  })

  app.post('/system/backups/now', async (c) => {
    const r = await schedule().run()
    if ('error' in r) return page(c, 400, { error: `The backup failed: ${r.error}` })
    audit(c, 'backup', path.basename(r.file))
    return page(c, 200, { ok: `Backup ${path.basename(r.file)} made${r.copiedOff ? ' and copied off the box' : ''}.` })
  })

  app.post('/system/backups/sftp', async (c) => {
    const b = await c.req.parseBody()
    const target = { host: String(b.host ?? '').trim(), port: Number(b.port), username: String(b.username ?? '').trim(), path: String(b.path ?? '').trim().replace(/(.)\/+$/, '$1'), hostKey: null }
    const checked = backupPolicySchema.shape.sftp.safeParse(target)
    if (!checked.success || !checked.data) return page(c, 400, { error: `Not saved: ${checked.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}` })
    const s = schedule()
    try {
      const pinned = await s.connectTarget(checked.data)
      s.setPolicy({ ...s.policy(), sftp: pinned })
      audit(c, 'backup-sftp', `${pinned.username}@${pinned.host}:${pinned.port}:${pinned.path} ${pinned.hostKey}`)
      return page(c, 200, { ok: `Connected: backups will be copied to ${pinned.host}. Its host key ${pinned.hostKey} is pinned.` })
    } catch (err) {
      if (err instanceof SftpError) return page(c, 400, { error: `Not saved: ${err.message}` })
      throw err
    }
  })

  app.post('/system/backups/sftp/off', (c) => {
    const s = schedule()
    s.setPolicy({ ...s.policy(), sftp: null })
    audit(c, 'backup-sftp', 'off')
    return page(c, 200, { ok: 'Backups stay on the appliance only.' })
  })

  app.post('/system/backups/restore', async (c) => {
    const b = await c.req.parseBody()
    const where = b.where === 'sftp' ? 'sftp' : 'local'
    try {
      const m = await schedule().stage(where, String(b.name ?? ''))
      audit(c, 'restore-staged', `${b.name} (${where})`)
      return page(c, 200, { ok: `The backup of ${m.hostname} from ${when(m.created_at)} is checked and staged. Restart the services to restore it.` })
    } catch (err) {
      if (err instanceof BackupError || err instanceof SftpError) return page(c, 400, { error: `Not restored: ${err.message}` })
      throw err
    }
  })
  return app
}
