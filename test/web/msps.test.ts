/*
 * Several MSPs on one appliance: the appliance admin makes them, their admins and hands
 * organisations between them; each MSP admin sees only their own organisations, through
 * every page that names one by id.
 */
import t from 'tap'
import { Accounts, REQUIRE_ADMIN_TOTP } from '../../appliance/services/accounts'
import { StoredSettings } from '../../appliance/services/stored-settings'
import { Tenants } from '../../appliance/services/tenants'
import { moat, moatOk, workDir } from '../helpers/appliance'
import { PASSWORD, post, setup, signIn } from '../helpers/web'

t.test('each MSP admin sees only their MSP\'s organisations', async (t) => {
  const { app, db, ids } = await setup(t)
  const tenants = new Tenants(db)
  const acme = tenants.orgByName('acme')!
  const globex = tenants.orgByName('globex')!
  const root = await signIn(app, 'root@moat.test')
  const get = async (path: string, who: { cookie: string }) => {
    const r = await app.request(path, { headers: { Cookie: who.cookie } })
    return { status: r.status, text: await r.text() }
  }

  let r = await post(app, '/msps', root, { name: 'Northwind' })
  t.equal(r.headers.get('location'), '/msps?done=msp-added')
  r = await post(app, '/msps', root, { name: 'northwind' })
  t.equal(r.status, 400)
  t.match(await r.text(), /MSP &quot;northwind&quot; exists already|MSP "northwind" exists already/)
  r = await post(app, '/msps/admins', root, { msp: 'northwind', email: 'ops@northwind.test', password: 'short' })
  t.equal(r.status, 400, 'a weak password is refused with the reason')
  r = await post(app, '/msps/admins', root, { msp: 'northwind', email: 'ops@northwind.test', password: PASSWORD })
  t.equal(r.headers.get('location'), '/msps?done=msp-admin-added')
  r = await post(app, '/msps/move', root, { org: 'globex', msp: 'northwind' })
  t.equal(r.headers.get('location'), '/msps?done=org-moved')
  await new Accounts(db).createAdmin('ops@local.test', PASSWORD, 'msp_admin', 1)
  const list = await get('/msps', root)
  t.match(list.text, /<td>northwind<\/td><td class="num">1<\/td><td>ops@northwind\.test<\/td>/, 'the MSPs page lists the MSP, its organisation count and admin')

  // MSP admins here sign in without a second factor, to keep the test to the scope.
  new StoredSettings(db).set(REQUIRE_ADMIN_TOTP, false)
  const nw = await signIn(app, 'ops@northwind.test')
  const local = await signIn(app, 'ops@local.test')
  t.equal((await get('/msps', nw)).status, 404, 'only the appliance admin manages MSPs')
  t.equal((await post(app, '/msps', nw, { name: 'mine' })).status, 404)

  const orgs = await get('/orgs', nw)
  t.match(orgs.text, /globex/)
  t.notMatch(orgs.text, /acme/, 'northwind does not see the local MSP\'s organisation')
  t.notMatch((await get('/orgs', local)).text, /globex/, 'and the local MSP no longer sees the one handed over')
  for (const path of [`/orgs/${acme.id}`, `/orgs/${acme.id}/users`, `/orgs/${acme.id}/outbound`, `/orgs/${acme.id}/settings`, `/quarantine/${ids.alicemail.quarantine}`, `/archive/${ids.alicemail.message}`]) {
    t.equal((await get(path, nw)).status, 404, `northwind: ${path} is not found`)
  }
  for (const path of [`/orgs/${globex.id}`, `/quarantine/${ids.hankmail.quarantine}`]) {
    t.equal((await get(path, nw)).status, 200, `northwind: ${path} is its own`)
    t.equal((await get(path, local)).status, 404, `local: ${path} is not`)
  }
  const q = (await get('/quarantine', nw)).text
  t.match(q, /hankmail/)
  t.notMatch(q, /alicemail|bobmail/, 'the quarantine lists only northwind\'s mail')
  t.equal((await post(app, `/quarantine/${ids.alicemail.quarantine}/release`, nw)).status, 404, 'nor can it release another MSP\'s mail')

  r = await post(app, '/orgs', nw, { name: 'contoso', msp: 'local' })
  t.equal(r.status, 303)
  t.equal(tenants.orgByName('contoso')!.msp_id, tenants.msp('northwind').id, 'an MSP admin\'s new organisation is their MSP\'s, whatever the form says')
  r = await post(app, '/orgs', root, { name: 'initech', msp: 'northwind' })
  t.equal(tenants.orgByName('initech')!.msp_id, tenants.msp('northwind').id, 'the appliance admin picks the MSP')
})

t.test('the CLI makes MSPs, their admins and organisations', async (t) => {
  const dir = workDir(t)
  t.match(moatOk(dir, ['msp', 'add', 'Northwind']), /MSP northwind created/)
  t.match(moatOk(dir, ['org', 'add', 'globex', '--msp', 'northwind']), /organisation globex created/)
  moatOk(dir, ['org', 'add', 'acme'])
  const r = moat(dir, ['admin', 'create', '--email', 'ops@northwind.test', '--password', PASSWORD, '--msp', 'nowhere'])
  t.equal(r.code, 1)
  t.match(r.stderr, /no MSP named "nowhere"/)
  t.match(moatOk(dir, ['admin', 'create', '--email', 'ops@northwind.test', '--password', PASSWORD, '--msp', 'northwind']), /MSP northwind admin ops@northwind\.test created/)
  const msps = JSON.parse(moatOk(dir, ['msp', 'list', '--json'])) as { name: string; organisations: number; admins: string | null }[]
  t.match(msps, [{ name: 'local', organisations: 1, admins: null }, { name: 'northwind', organisations: 1, admins: 'ops@northwind.test' }])
  moatOk(dir, ['org', 'move', 'acme', '--msp', 'northwind'])
  t.match(JSON.parse(moatOk(dir, ['msp', 'list', '--json'])), [{ name: 'local', organisations: 0 }, { name: 'northwind', organisations: 2 }])
})
