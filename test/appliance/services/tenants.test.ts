import t from 'tap'
import { openDatabase } from '../../../appliance/db/database'
import { normaliseAddress, parseHostPort, Tenants } from '../../../appliance/services/tenants'
import { Recipients } from '../../../appliance/services/recipients'

function setup() {
  const db = openDatabase(':memory:')
  const tenants = new Tenants(db)
  tenants.addOrg('acme')
  tenants.addOrg('globex')
  tenants.addDomain('example.com', { org: 'acme', deliverTo: 'mail.example.com' })
  tenants.addDomain('globex.test', { org: 'globex', deliverTo: '[192.0.2.1]:2525' })
  return { db, tenants, recipients: new Recipients(db) }
}

t.test('address and host:port parsing', async (t) => {
  const cases: [string, string | RegExp][] = [
    ['Alice@Example.COM', 'alice@example.com'],
    ['  bob.smith+tag@example.com ', 'bob.smith+tag@example.com'],
    ['no-at-sign', /not an e-mail address/],
    ['"quoted"@example.com', /invalid local part/],
    ['a..b@example.com', /invalid local part/],
    ['alice@-bad-.com', /invalid domain/],
    ['alice@localhost', /invalid domain/],
  ]
  for (const [input, want] of cases) {
    if (typeof want === 'string') t.equal(normaliseAddress(input).email, want, input)
    else t.throws(() => normaliseAddress(input), want, input)
  }
  t.same(parseHostPort('mail.example.com'), { host: 'mail.example.com', port: 25 })
  t.same(parseHostPort('127.0.0.1:2600'), { host: '127.0.0.1', port: 2600 })
  t.same(parseHostPort('[::1]:2600'), { host: '::1', port: 2600 })
  t.throws(() => parseHostPort('h:70000'), /out of range/)
})

t.test('organisations, domains and users validate and refuse duplicates', async (t) => {
  const { tenants } = setup()
  t.throws(() => tenants.addOrg('acme'), /exists already/)
  t.throws(() => tenants.addOrg('Bad Name!'), /must be/)
  t.throws(() => tenants.addDomain('example.com', { org: 'globex', deliverTo: 'x' }), /exists already/)
  t.throws(() => tenants.addDomain('other.test', { org: 'nope', deliverTo: 'x' }), /no organisation/)
  t.throws(() => tenants.addUser('x@unknown.test'), /not provisioned/)
  const u = tenants.addUser('Alice@Example.com', { displayName: 'Alice' })
  t.equal(u.email, 'alice@example.com')
  t.equal(u.org_id, tenants.requireOrg('acme').id, 'the organisation follows from the domain')
  t.throws(() => tenants.addUser('alice@example.com'), /exists already/)
  t.throws(() => tenants.setPolicy('acme', { spam_threshold: 12, surespam_threshold: 6 }), /surespam threshold/)
  t.equal(tenants.setPolicy('acme', { spam_threshold: 4 }).spam_threshold, 4)
})

t.test('aliases never cross organisations', async (t) => {
  const { tenants } = setup()
  tenants.addUser('hank@globex.test')
  tenants.addUser('alice@example.com')
  t.throws(() => tenants.addAlias('sales@example.com', 'hank@globex.test'), /same organisation/)
  t.equal(tenants.addAlias('sales@example.com', 'alice@example.com').target, 'alice@example.com')
  t.throws(() => tenants.addAlias('alice@example.com', 'alice@example.com'), /user already/)
})

t.test('recipient resolution: users, aliases, catch-all, suspended organisations', async (t) => {
  const { db, tenants, recipients } = setup()
  const alice = tenants.addUser('alice@example.com')
  tenants.addAlias('info@example.com', 'alice@example.com')
  t.match(recipients.resolve('Alice', 'EXAMPLE.com'), { ok: true, userId: alice.id, address: 'alice@example.com' })
  t.match(recipients.resolve('info', 'example.com'), { ok: true, userId: alice.id })
  t.same(recipients.resolve('nobody', 'example.com'), { ok: false, reason: 'unknown-user' })
  t.same(recipients.resolve('alice', 'elsewhere.test'), { ok: false, reason: 'unknown-domain' })
  tenants.setCatchAll('example.com', true)
  t.match(recipients.resolve('nobody', 'example.com'), { ok: true, userId: null })
  db.prepare(`UPDATE organisations SET suspended_at = 1 WHERE name = 'acme'`).run()
  t.same(recipients.resolve('alice', 'example.com'), { ok: false, reason: 'suspended' })
})

t.test('bulk import creates, skips existing and reports bad rows', async (t) => {
  const { tenants } = setup()
  tenants.addUser('existing@example.com')
  const rows = [
    { line: 2, email: 'new1@example.com' },
    { line: 3, email: 'existing@example.com' },
    { line: 4, email: 'bad address' },
    { line: 5, email: 'x@unknown.test' },
    { line: 6, email: 'hank@globex.test', role: 'org_admin' as const },
    { line: 7, email: 'r@example.com', role: 'root' as unknown as 'user' },
  ]
  const progress: number[] = []
  const r = tenants.importUsers(rows, (n) => progress.push(n))
  t.equal(r.created, 2)
  t.equal(r.skipped, 1)
  t.same(r.errors.map((e) => e.line), [4, 5, 7])
  t.equal(progress.at(-1), rows.length)
  t.equal(tenants.userByEmail('hank@globex.test')?.role, 'org_admin')
})
