/*
 * /api/v1/admin: provisioning and operation from the MSP's own tools. A token acts with its
 * maker's role and scope (the UI's own rules): an organisation outside it is a 404, an end
 * user's token is refused, and what only some roles may do in the UI only they may do here.
 * Each group of endpoints is a module of its own; all are declared through AdminApi, which
 * validates with the same zod schemas it documents at /api/v1/admin/openapi.json.
 */
import { Hono } from 'hono'
import type { Db } from '../../appliance/db/database'
import type { Accounts } from '../../appliance/services/accounts'
import type { RawStore } from '../../appliance/services/raw-store'
import { apiContext } from './context'
import { AdminApi, type AdminEnv } from './define'
import { listEndpoints } from './lists'
import { organisationEndpoints } from './organisations'
import { outboundEndpoints } from './outbound'
import { policyEndpoints } from './policy'
import { quarantineEndpoints } from './quarantine'
import { ruleEndpoints } from './rules'
import { statisticsEndpoints } from './statistics'
import { trackingEndpoints } from './tracking'

export { MAX_BULK } from './organisations'

export function adminApiRoutes(deps: { db: Db; accounts: Accounts; raws: RawStore; version: string }): Hono<AdminEnv> {
  const app = new Hono<AdminEnv>()
  const api = new AdminApi(app)
  app.use('/api/v1/admin/*', async (c, next) => {
    if (c.req.path === '/api/v1/admin/openapi.json') return next()
    if (c.get('principal')?.role === 'user') return c.json({ error: "the admin API is for administrators; this token is an end user's" }, 403)
    await next()
  })
  let spec: object | null = null
  app.get('/api/v1/admin/openapi.json', (c) => c.json((spec ??= api.openapi({ title: 'Moat admin API', version: deps.version }))))

  const ctx = apiContext(api, deps.db, deps.accounts, deps.raws)
  for (const group of [organisationEndpoints, listEndpoints, outboundEndpoints, policyEndpoints, ruleEndpoints, quarantineEndpoints, statisticsEndpoints, trackingEndpoints]) group(ctx)
  return app
}
