import t from 'tap'
import { openDatabase } from '../../../appliance/db/database'
import { hashPassword, verifyPassword } from '../../../appliance/services/passwords'
import { parseCidr, RelayControl } from '../../../appliance/services/relay'
import { Tenants } from '../../../appliance/services/tenants'

function setup() {
  const db = openDatabase(':memory:')
  const tenants = new Tenants(db)
  tenants.addOrg('acme')
  tenants.addOrg('globex')
  tenants.addDomain('example.com', { org: 'acme', deliverTo: '127.0.0.1:2600' })
  tenants.addDomain('globex.test', { org: 'globex', deliverTo: '127.0.0.1:2600' })
  tenants.addUser('alice@example.com')
  tenants.addUser('bob@example.com')
  tenants.addAlias('sales@example.com', 'alice@example.com')
  return { db, tenants, relay: new RelayControl(db) }
}

t.test('CIDR parsing refuses what is not one customer network', async (t) => {
  t.equal(parseCidr('192.0.2.7').cidr, '192.0.2.7/32')
  t.equal(parseCidr('2001:DB8::/48').cidr, '2001:db8::/48')
  t.throws(() => parseCidr('0.0.0.0/0'), /too wide/)
  t.throws(() => parseCidr('192.0.2.0/33'), /invalid prefix/)
  t.throws(() => parseCidr('mail.example.com'), /not an IP/)
})

t.test('relay networks map a client to its organisation', async (t) => {
  const { relay, tenants, db } = setup()
  relay.addNetwork('acme', '192.0.2.0/28')
  relay.addNetwork('globex', '2001:db8:1::/48')
  t.equal(relay.orgForClient('192.0.2.14'), tenants.orgByName('acme')!.id)
  t.equal(relay.orgForClient('::ffff:192.0.2.1'), tenants.orgByName('acme')!.id, 'IPv4-mapped')
  t.equal(relay.orgForClient('192.0.2.16'), null)
  t.equal(relay.orgForClient('2001:db8:1:ff::25'), tenants.orgByName('globex')!.id)
  t.throws(() => relay.addNetwork('globex', '192.0.2.0/28'), /registered already/)
  db.prepare(`UPDATE organisations SET suspended_at = 1 WHERE name = 'acme'`).run()
  t.equal(relay.orgForClient('192.0.2.14'), null, 'a suspended organisation does not relay')
  relay.removeNetwork('2001:db8:1::/48')
  t.equal(relay.orgForClient('2001:db8:1:ff::25'), null)
})

t.test('senders: a server its own domains, a user their own addresses', async (t) => {
  const { relay, tenants } = setup()
  const acme = tenants.orgByName('acme')!.id
  const alice = tenants.userByEmail('alice@example.com')!.id
  t.ok(relay.senderAllowed('anyone@example.com', { orgId: acme }))
  t.ok(relay.senderAllowed('', { orgId: acme }), "the server's own bounces")
  t.notOk(relay.senderAllowed('ceo@globex.test', { orgId: acme }))
  t.notOk(relay.senderAllowed('x@elsewhere.test', { orgId: acme }))
  t.ok(relay.senderAllowed('Alice@Example.com', { orgId: acme, userId: alice }))
  t.ok(relay.senderAllowed('sales@example.com', { orgId: acme, userId: alice }), 'her alias')
  t.notOk(relay.senderAllowed('bob@example.com', { orgId: acme, userId: alice }))
  t.notOk(relay.senderAllowed('', { orgId: acme, userId: alice }), 'users send no bounces')
})

t.test('passwords: scrypt hashes, checked in constant form', async (t) => {
  const { relay } = setup()
  const h = await hashPassword('a long enough password')
  t.match(h, /^scrypt\$32768\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/)
  t.not(await hashPassword('a long enough password'), h, 'salted')
  t.ok(await verifyPassword('a long enough password', h))
  t.notOk(await verifyPassword('a long enough passwore', h))
  t.notOk(await verifyPassword('anything', null), 'no hash never matches')
  await t.rejects(hashPassword('short'), /at least 10/)
  await relay.setPassword('alice@example.com', 'a long enough password')
  t.match((await relay.authenticate('ALICE@example.com', 'a long enough password')).user, { email: 'alice@example.com' })
  t.equal((await relay.authenticate('alice@example.com', 'wrong password!')).user, null)
  t.equal((await relay.authenticate('bob@example.com', 'a long enough password')).user, null, 'no password set')
  t.equal((await relay.authenticate('nobody@example.com', 'a long enough password')).user, null)

  // A mail client (a copier, a ticket system) opening eight connections at once, right password.
  const burst = await Promise.all(Array.from({ length: 8 }, () => relay.authenticate('alice@example.com', 'a long enough password', '192.0.2.7')))
  t.same(burst.map((r) => r.user?.email ?? r.retryAfterSeconds), Array(8).fill('alice@example.com'), 'eight parallel logins with the right password all get in')
  // A guesser doing the same is counted one guess at a time: the guard's delay starts after its free tries.
  const guesses = await Promise.all(Array.from({ length: 8 }, (_, i) => relay.authenticate('alice@example.com', `wrong password ${i}`, '198.51.100.9')))
  t.equal(guesses.filter((r) => r.retryAfterSeconds === undefined).length, 3, 'three parallel guesses checked, the rest refused unchecked')
})
