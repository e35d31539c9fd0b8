/*
 * How an admin API endpoint is declared: its method and path, the zod schemas of its path
 * parameters, query, body and answer, and its handler. The same declaration registers the
 * Hono route (which validates with those schemas before the handler runs) and describes the
 * endpoint in the OpenAPI document, so the document cannot drift from what is enforced.
 */
import type { Context, Hono } from 'hono'
import { z } from 'zod'
import type { Principal, Scope } from '../../appliance/services/accounts'

export type AdminEnv = { Variables: { principal: Principal; scope: Scope } }

export class ApiError extends Error {
  constructor(readonly status: 400 | 403 | 404 | 409 | 413, message: string) {
    super(message)
  }
}

export interface Endpoint<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType, R extends z.ZodType> {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete'
  /** Hono style: /api/v1/admin/organisations/:org */
  path: string
  summary: string
  tag: string
  params?: P
  query?: Q
  body?: B
  response: R
  status?: 200 | 201
  run(ctx: { c: Context<AdminEnv>; principal: Principal; scope: Scope; params: z.infer<P>; query: z.infer<Q>; body: z.infer<B> }): Promise<z.infer<R>> | z.infer<R>
}

const ErrorBody = z.object({ error: z.string(), issues: z.array(z.object({ path: z.string(), message: z.string() })).optional() })

const issues = (e: z.ZodError) => e.issues.map((i) => ({ path: i.path.join('.'), message: i.message }))

export class AdminApi {
  private readonly endpoints: Endpoint<z.ZodType, z.ZodType, z.ZodType, z.ZodType>[] = []

  constructor(private readonly app: Hono<AdminEnv>) {}

  add<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType, R extends z.ZodType>(e: Endpoint<P, Q, B, R>): void {
    this.endpoints.push(e as unknown as Endpoint<z.ZodType, z.ZodType, z.ZodType, z.ZodType>)
    this.app.on(e.method.toUpperCase(), e.path, async (c) => {
      const fail = (where: string, err: z.ZodError) => c.json({ error: `the ${where} is not valid`, issues: issues(err) }, 400)
      const params = e.params ? e.params.safeParse(c.req.param()) : { success: true as const, data: {} }
      if (!params.success) return fail('path', params.error)
      const query = e.query ? e.query.safeParse(c.req.query()) : { success: true as const, data: {} }
      if (!query.success) return fail('query', query.error)
      let body: unknown = {}
      if (e.body) {
        const raw = await c.req.json().catch(() => undefined)
        if (raw === undefined) return c.json({ error: 'the body must be JSON' }, 400)
        const parsed = e.body.safeParse(raw)
        if (!parsed.success) return fail('body', parsed.error)
        body = parsed.data
      }
      try {
        const out = await e.run({ c, principal: c.get('principal'), scope: c.get('scope'), params: params.data as never, query: query.data as never, body: body as never })
        return c.json(out as object, e.status ?? 200)
      } catch (err) {
        if (err instanceof ApiError) return c.json({ error: err.message }, err.status)
        throw err
      }
    })
  }

  /** The OpenAPI 3.1 document, from the same schemas the handlers validate with. */
  openapi(info: { title: string; version: string }): object {
    const paths: Record<string, Record<string, unknown>> = {}
    const schema = (s: z.ZodType) => {
      const { $schema: _, ...rest } = z.toJSONSchema(s, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>
      return rest
    }
    for (const e of this.endpoints) {
      const p = e.path.replace(/:(\w+)/g, '{$1}')
      const parameters: unknown[] = []
      for (const [where, s] of [['path', e.params], ['query', e.query]] as const) {
        if (!s) continue
        const shape = (s as unknown as z.ZodObject).shape as Record<string, z.ZodType>
        for (const [name, prop] of Object.entries(shape)) {
          parameters.push({ name, in: where, required: where === 'path' || !prop.safeParse(undefined).success, schema: schema(prop), description: prop.description })
        }
      }
      paths[p] ??= {}
      paths[p][e.method] = {
        summary: e.summary,
        tags: [e.tag],
        ...(parameters.length ? { parameters } : {}),
        ...(e.body ? { requestBody: { required: true, content: { 'application/json': { schema: schema(e.body) } } } } : {}),
        responses: {
          [String(e.status ?? 200)]: { description: 'done', content: { 'application/json': { schema: schema(e.response) } } },
          '400': { description: 'the request is not valid: what and where', content: { 'application/json': { schema: schema(ErrorBody) } } },
          '401': { description: 'no valid API token' },
          '403': { description: "the token's role may not do this" },
          '404': { description: 'not found, or not in the scope of the token' },
        },
      }
    }
    return {
      openapi: '3.1.0',
      info: { ...info, description: "Moat's admin API. A token acts with its maker's role and scope: the appliance admin everything, an MSP admin its organisations, an organisation admin its own." },
      components: { securitySchemes: { token: { type: 'http', scheme: 'bearer', description: 'a token made on the account page (moat_…)' } } },
      security: [{ token: [] }],
      paths,
    }
  }
}
