/*
 * The outbreak rules (who + what + action) for admins: match counts, switching a rule on and
 * off, removing it, and adding one with its condition as JSON (the same language as `moat
 * rule add`). Appliance-wide rules are the appliance admin's; other admins see them and edit
 * only the rules of organisations in their scope.
 */
import { type Context, Hono } from 'hono'
import type { Db } from '../../appliance/db/database'
import type { Accounts } from '../../appliance/services/accounts'
import { RULE_ACTIONS, type RuleAction, RuleError, Rules, type RuleSpec } from '../../appliance/services/rules'
import { TenantError } from '../../appliance/services/tenants'
import { type Env, requireLogin } from '../security'
import { Csrf, Done, doneOf, Layout, when } from '../views/layout'

export function ruleRoutes(deps: { db: Db; accounts: Accounts }): Hono<Env> {
  const app = new Hono<Env>()
  const rules = new Rules(deps.db)
  const admins = requireLogin(['appliance_admin', 'msp_admin', 'org_admin'])
  app.use('/rules', admins)
  app.use('/rules/*', admins)
  const orgs = deps.db.prepare(`SELECT id, name FROM organisations ORDER BY name`)

  const inScope = (c: Context<Env>, orgId: number | null) => {
    const scope = c.get('scope')!
    return orgId === null ? scope.orgIds === null : scope.orgIds === null || scope.orgIds.includes(orgId)
  }
  const visible = (c: Context<Env>) => rules.list().filter((r) => r.org_id === null || inScope(c, r.org_id))

  const page = (c: Context<Env>, status: 200 | 400 = 200, error?: string) => {
    const session = c.get('session')!
    const mine = (orgs.all() as { id: number; name: string }[]).filter((o) => inScope(c, o.id))
    const global = c.get('scope')!.orgIds === null
    return c.html(
      <Layout title="Rules" session={session}>
        <h1>Outbreak rules</h1>
        <Done {...doneOf(c)} />
        {error && <p class="error" role="alert">{error}</p>}
        <table id="rules">
          <thead><tr><th>Rule</th><th>For</th><th>Action</th><th class="num">Matches</th><th class="wide">Last match</th><th></th></tr></thead>
          <tbody>
            {visible(c).map((r) => (
              <tr data-name={r.name}>
                <td>
                  <strong>{r.name}</strong>{r.enabled ? '' : ' (off)'}
                  <div class="muted">{r.description}</div>
                  <details><summary>condition</summary><pre>{JSON.stringify(r.what, null, 1)}</pre></details>
                </td>
                <td>{r.org ?? 'all organisations'}, {r.direction}</td>
                <td>{r.action}{r.action === 'score' ? ` ${r.score}` : ''}</td>
                <td class="num">{r.matches}</td>
                <td class="wide">{when(r.last_match_at)}</td>
                <td>
                  {inScope(c, r.org_id) && (
                    <div class="actions">
                      <form method="post" action={`/rules/${r.id}/enabled`}><Csrf session={session} /><input type="hidden" name="value" value={r.enabled ? 'off' : 'on'} /><button type="submit">{r.enabled ? 'Switch off' : 'Switch on'}</button></form>
                      <form method="post" action={`/rules/${r.id}/delete`}><Csrf session={session} /><button type="submit">Remove</button></form>
                    </div>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        <h2>Add a rule</h2>
        <form method="post" action="/rules" class="policy">
          <Csrf session={session} />
          <label>Name <input name="name" required pattern="[A-Z][A-Z0-9_]+" placeholder="FAKE_INVOICE" /></label>
          <label>Description <input name="description" /></label>
          <label>For
            <select name="org">
              {global && <option value="">all organisations</option>}
              {mine.map((o) => <option value={o.name}>{o.name}</option>)}
            </select>
          </label>
          <label>Direction <select name="direction"><option value="in">inbound</option><option value="out">outbound</option><option value="both">both</option></select></label>
          <label>Action <select name="action">{RULE_ACTIONS.map((a) => <option value={a}>{a}</option>)}</select></label>
          <label>Score (action score) <input type="number" step="0.1" name="score" value="0" /></label>
          <label>Condition (JSON) <textarea name="what" rows={4} required placeholder='{"all":[{"subject":"invoice"},{"attachment":"\\.zip$"}]}'></textarea></label>
          <button type="submit">Add rule</button>
        </form>
        <h2>Export and import</h2>
        <p><a href="/rules/export" download="moat-rules.json" id="export">Download these rules</a> as JSON, the format of <code>moat rule export</code>.</p>
        {global && (
          <form method="post" action="/rules/import" enctype="multipart/form-data" class="filters" id="import">
            <Csrf session={session} />
            <input type="file" name="file" accept="application/json,.json" required />
            <button type="submit">Import rules</button>
            <span class="muted">All or nothing; a rule of the same name is replaced.</span>
          </form>
        )}
      </Layout>,
      status,
    )
  }

  app.get('/rules', (c) => page(c))

  app.get('/rules/export', (c) => {
    const names = new Set(visible(c).map((r) => r.name))
    c.header('Content-Disposition', 'attachment; filename="moat-rules.json"')
    return c.json(rules.export().filter((r) => names.has(r.name)))
  })

  // Appliance-wide, as `moat rule import`: a file may name any organisation, or none.
  app.post('/rules/import', requireLogin(['appliance_admin']), async (c) => {
    const file = (await c.req.parseBody()).file
    if (!(file instanceof File)) return page(c, 400, 'Choose a rules file (JSON) to import.')
    let specs: unknown
    try {
      specs = JSON.parse(await file.text())
    } catch (err) {
      return page(c, 400, `The file is not JSON: ${(err as Error).message}`)
    }
    try {
      const n = rules.import(specs as RuleSpec[])
      deps.accounts.audit(c.get('session')!.principal, 'rule-import', `${n} rules from ${file.name}`)
      return c.redirect(`/rules?done=rules-imported&n=${n}`, 303)
    } catch (err) {
      if (err instanceof RuleError || err instanceof TenantError) return page(c, 400, err.message)
      throw err
    }
  })

  app.post('/rules', async (c) => {
    const body = await c.req.parseBody()
    const org = String(body.org ?? '') || null
    const orgId = org === null ? null : ((orgs.all() as { id: number; name: string }[]).find((o) => o.name === org)?.id ?? -1)
    if (!inScope(c, orgId)) return c.notFound()
    let what: unknown
    try {
      what = JSON.parse(String(body.what ?? ''))
    } catch (err) {
      return page(c, 400, `The condition is not JSON: ${(err as Error).message}`)
    }
    try {
      const r = rules.add({
        name: String(body.name ?? ''), description: String(body.description ?? ''), org, direction: (['in', 'out', 'both'].includes(String(body.direction)) ? body.direction : 'in') as 'in',
        what, action: String(body.action) as RuleAction, score: Number(body.score) || 0,
      })
      deps.accounts.audit(c.get('session')!.principal, 'rule-add', r.name)
    } catch (err) {
      if (err instanceof RuleError || err instanceof TenantError) return page(c, 400, err.message)
      throw err
    }
    return c.redirect('/rules?done=rule-added', 303)
  })

  const editable = (c: Context<Env>) => {
    const r = rules.list().find((x) => x.id === Number(c.req.param('id')))
    return r && inScope(c, r.org_id) ? r : undefined
  }
  app.post('/rules/:id/enabled', async (c) => {
    const r = editable(c)
    if (!r) return c.notFound()
    const on = (await c.req.parseBody()).value === 'on'
    rules.setEnabled(r.name, on)
    deps.accounts.audit(c.get('session')!.principal, on ? 'rule-enable' : 'rule-disable', r.name)
    return c.redirect(`/rules?done=${on ? 'rule-on' : 'rule-off'}`, 303)
  })
  app.post('/rules/:id/delete', (c) => {
    const r = editable(c)
    if (!r) return c.notFound()
    rules.remove(r.name)
    deps.accounts.audit(c.get('session')!.principal, 'rule-remove', r.name)
    return c.redirect('/rules?done=rule-removed', 303)
  })
  return app
}
