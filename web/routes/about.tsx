/* The About page: the running version, the runtime, and whether the update feed has a newer release. */
import { Hono } from 'hono'
import { checkForUpdate } from '../../appliance/services/updates'
import { type Env, requireLogin } from '../security'
import { Layout } from '../views/layout'

export function aboutRoutes(opts: { version: string; updateFeed: string | null }): Hono<Env> {
  const app = new Hono<Env>()
  app.get('/about', requireLogin(), async (c) => {
    const u = await checkForUpdate(opts.version, opts.updateFeed)
    return c.html(
      <Layout title="About" session={c.get('session')}>
        <h1>About Moat</h1>
        <table>
          <tbody>
            <tr><th>Version</th><td id="version">{opts.version}</td></tr>
            <tr><th>Node.js</th><td>{process.version}</td></tr>
            <tr><th>Licence</th><td>Apache License 2.0</td></tr>
          </tbody>
        </table>
        <h2>Updates</h2>
        {u.error && <p class="muted" id="update">{u.error}</p>}
        {!u.error && u.newer && (
          <p id="update" role="status">
            Moat {u.latest} is available (this is {u.current}).{u.url && <> <a href={u.url}>Download</a></>}
            {u.notes && <pre class="body">{u.notes}</pre>}
          </p>
        )}
        {!u.error && !u.newer && <p id="update">This is the newest release ({u.latest}).</p>}
      </Layout>,
    )
  })
  return app
}
