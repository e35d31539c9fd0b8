/* Admin alerts: the list behind the banner, and acknowledging one. */
import { Hono } from 'hono'
import type { Db } from '../../appliance/db/database'
import { Alerts } from '../../appliance/services/alerts'
import { type Env, requireLogin } from '../security'
import { Csrf, Done, doneOf, Layout, when } from '../views/layout'

export function alertRoutes(db: Db): Hono<Env> {
  const app = new Hono<Env>()
  const alerts = new Alerts(db)
  const admins = requireLogin(['appliance_admin', 'msp_admin', 'org_admin'])
  app.get('/alerts', admins, (c) => {
    const session = c.get('session')!
    const rows = alerts.list(c.get('scope'), { all: c.req.query('all') === '1' })
    return c.html(
      <Layout title="Alerts" session={session}>
        <h1>Alerts</h1>
        <Done {...doneOf(c)} />
        <table id="alerts">
          <tbody>
            {rows.map((a) => (
              <tr data-id={a.id}>
                <td>{when(a.created_at)}</td>
                <td>{a.org ?? 'appliance'}</td>
                <td>{a.message}</td>
                <td>
                  {a.acknowledged_at ? (
                    `seen ${when(a.acknowledged_at)}`
                  ) : (
                    <form method="post" action={`/alerts/${a.id}/ack`} class="inline"><Csrf session={session} /><button type="submit">Seen</button></form>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {!rows.length && <p class="muted">No open alerts.</p>}
        <p><a href="/alerts?all=1">Include acknowledged alerts</a></p>
      </Layout>,
    )
  })
  app.post('/alerts/:id/ack', admins, (c) => {
    if (!alerts.acknowledge(Number(c.req.param('id')), c.get('scope'))) return c.notFound()
    return c.redirect('/alerts?done=alert-ack', 303)
  })
  return app
}
