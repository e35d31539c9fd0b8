/*
 * The audit log of admin actions, newest first, paged: the appliance admin sees all of it, an
 * MSP admin what concerns their organisations and their own actions, an organisation admin
 * their organisation's.
 */
import { Hono } from 'hono'
import type { Db } from '../../appliance/db/database'
import { whereIn } from '../../appliance/db/sql'
import { type Env, requireLogin } from '../security'
import { Layout, when } from '../views/layout'

const PAGE = 100

export function auditRoutes(deps: { db: Db }): Hono<Env> {
  const app = new Hono<Env>()
  app.use('/audit', requireLogin(['appliance_admin', 'msp_admin', 'org_admin']))
  app.get('/audit', (c) => {
    const scope = c.get('scope')!
    const p = c.get('session')!.principal
    const where: string[] = []
    const args: unknown[] = []
    if (scope.orgIds !== null) {
      const w = whereIn('a.org_id', scope.orgIds)
      where.push(`(${w.sql} OR a.actor = ?)`)
      args.push(...w.args, `${p.kind}:${p.email}`)
    }
    const action = (c.req.query('action') ?? '').trim()
    if (action) {
      where.push('instr(a.action, ?) > 0')
      args.push(action)
    }
    const before = Number(c.req.query('before'))
    if (Number.isInteger(before) && before > 0) {
      where.push('a.id < ?')
      args.push(before)
    }
    const rows = deps.db
      .prepare(`SELECT a.id, a.at, a.actor, a.action, a.detail, o.name AS org FROM audit_log a LEFT JOIN organisations o ON o.id = a.org_id
        ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY a.id DESC LIMIT ${PAGE + 1}`)
      .all(...args) as { id: number; at: number; actor: string; action: string; detail: string; org: string | null }[]
    const shown = rows.slice(0, PAGE)
    const next = new URLSearchParams({ ...(action ? { action } : {}), before: String(shown.at(-1)?.id ?? 0) })
    return c.html(
      <Layout title="Audit log" session={c.get('session')}>
        <h1>Audit log</h1>
        <form method="get" action="/audit" class="filters" role="search">
          <input name="action" placeholder="action, e.g. quarantine-release" value={action} />
          <button type="submit">Filter</button>
        </form>
        <table id="audit">
          <thead><tr><th>When</th><th>Who</th><th class="wide">Organisation</th><th>Action</th><th>Detail</th></tr></thead>
          <tbody>
            {shown.map((r) => (
              <tr><td>{when(r.at)}</td><td>{r.actor.replace(/^(admin|user):/, '')}</td><td class="wide">{r.org ?? ''}</td><td>{r.action}</td><td>{r.detail}</td></tr>
            ))}
          </tbody>
        </table>
        {rows.length > PAGE && <p><a href={`/audit?${next}`} rel="next">Older →</a></p>}
      </Layout>,
    )
  })
  return app
}
