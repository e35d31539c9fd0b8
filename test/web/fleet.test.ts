/*
 * The Fleet pages through app.request(): an organisation admin sees its own hosts only, and
 * another tenant's host by id is a 404 on every route (read, revoke, withdraw its learning, enroll
 * for its org).
 */
import crypto from 'node:crypto'
import t from 'tap'
import { Fleet } from '../../appliance/fleet/console'
import { enrollTestHost } from '../helpers/fleet'
import { post, setup, signIn } from '../helpers/web'

function enrollHost(fleet: Fleet, orgId: number, name: string): number {
  const { token } = fleet.createToken(orgId, { by: 'test' })
  const publicKey = crypto.generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' }).toString('base64')
  return fleet.enroll({ token, publicKey, name, kind: 'linux' }).hostId
}

t.test('Fleet: each tenant sees its own hosts; another tenant\'s host by id is a 404', async (t) => {
  const { app, db } = await setup(t)
  const fleet = new Fleet(db)
  const orgId = (name: string) => db.prepare(`SELECT id FROM organisations WHERE name = ?`).pluck().get(name) as number
  const acmeHost = enrollHost(fleet, orgId('acme'), 'acme-web01')
  const globexHost = enrollHost(fleet, orgId('globex'), 'globex-db01')

  const boss = await signIn(app, 'boss@example.com')
  const list = await (await app.request('/fleet', { headers: { Cookie: boss.cookie } })).text()
  t.match(list, /acme-web01/)
  t.notMatch(list, /globex-db01/, "the other organisation's host is not listed")
  t.equal((await app.request(`/fleet/hosts/${acmeHost}`, { headers: { Cookie: boss.cookie } })).status, 200)
  t.equal((await app.request(`/fleet/hosts/${globexHost}`, { headers: { Cookie: boss.cookie } })).status, 404, 'reading it by id')
  t.equal((await post(app, `/fleet/hosts/${globexHost}/revoke`, boss)).status, 404, 'revoking it by id')
  t.equal((await post(app, `/fleet/hosts/${globexHost}/commands`, boss, { kind: 'refresh-inventory' })).status, 404, 'sending it a command by id')
  t.equal((await post(app, `/fleet/hosts/${acmeHost}/commands`, boss, { kind: 'refresh-inventory' })).status, 303, 'its own host takes a command')
  t.same(fleet.commands(globexHost), [], 'the other tenant\'s host got none')
  t.equal(fleet.hosts(null).find((h) => h.id === globexHost)!.status === 'revoked', false)
  t.equal((await post(app, '/fleet/tokens', boss, { org: String(orgId('globex')), expires: '7' })).status, 404, 'making a token for it')

  // What appliances shared with the fleet: shown on the host page, withdrawn only for one's own.
  const word = (key: string) => ({ kind: 'url', key, label: 'spam', reporter: 'r1', trust: 1 })
  const acmeMx = enrollTestHost(fleet, orgId('acme'), 'acme-mx', 'appliance')
  const globexMx = enrollTestHost(fleet, orgId('globex'), 'globex-mx', 'appliance')
  acmeMx.send([{ kind: 'fingerprints', at: Date.now(), data: { words: [word('a'.repeat(32)), word('b'.repeat(32))] } }])
  globexMx.send([{ kind: 'fingerprints', at: Date.now(), data: { words: [word('c'.repeat(32))] } }])
  t.match(await (await app.request(`/fleet/hosts/${acmeMx.hostId}`, { headers: { Cookie: boss.cookie } })).text(), /2 spam and 0 ham fingerprints standing/, 'the host page shows what it shared')
  t.equal((await post(app, `/fleet/hosts/${globexMx.hostId}/learning/withdraw`, boss)).status, 404, "withdrawing another tenant's host's words by id")
  t.equal((await post(app, `/fleet/hosts/${acmeMx.hostId}/learning/withdraw`, boss)).status, 303)
  t.same(fleet.learning.status([acmeMx.hostId, globexMx.hostId]).map((r) => [r.spam, r.withdrawn]), [[0, 2], [1, 0]], "its own withdrawn, the other's untouched")
  const made = await (await post(app, '/fleet/tokens', boss, { org: String(orgId('acme')), expires: '7', uses: '1' })).text()
  t.match(made, /moat agent enroll http:\/\/localhost --token moat_enroll_[\w-]+/, 'its own token, with the install lines')
  t.match(made, /msiexec \/i moat-agent\.msi \/qn CONSOLE_URL=/)

  // A command's whole output (a log bundle): its own host's, not another tenant's.
  const bundle = (host: number, text: string) => {
    const id = fleet.queueCommand(host, 'collect-logs', null, 'test')!
    db.prepare(`UPDATE fleet_commands SET done_at = ?, ok = 1, output = ? WHERE id = ?`).run(Date.now(), text, id)
    return id
  }
  const ours = bundle(acmeHost, `log bundle: 2 lines\nDec 07 nginx: upstream timed out\nDec 07 kernel: EXT4 warning`)
  const theirs = bundle(globexHost, 'log bundle: globex secrets\n...')
  const page = await (await app.request(`/fleet/hosts/${acmeHost}`, { headers: { Cookie: boss.cookie } })).text()
  t.match(page, new RegExp(`href="/fleet/hosts/${acmeHost}/commands/${ours}/output"`), 'the page links the whole output')
  const got = await app.request(`/fleet/hosts/${acmeHost}/commands/${ours}/output`, { headers: { Cookie: boss.cookie } })
  t.equal(got.status, 200)
  t.match(got.headers.get('content-disposition'), /attachment/)
  t.match(await got.text(), /EXT4 warning/)
  t.equal((await app.request(`/fleet/hosts/${globexHost}/commands/${theirs}/output`, { headers: { Cookie: boss.cookie } })).status, 404, "another tenant's command output")
  t.equal((await app.request(`/fleet/hosts/${acmeHost}/commands/${theirs}/output`, { headers: { Cookie: boss.cookie } })).status, 404, "another host's command under its own host's id")

  const user = await signIn(app, 'alice@example.com')
  t.equal((await app.request('/fleet', { headers: { Cookie: user.cookie } })).status, 404, 'an end user has no Fleet')
  const root = await signIn(app, 'root@moat.test')
  const all = await (await app.request('/fleet', { headers: { Cookie: root.cookie } })).text()
  t.match(all, /acme-web01/)
  t.match(all, /globex-db01/, 'the appliance admin sees every host')
})
