/* moat-recipients through Haraka's own test fixtures, against a real SQLite database. */
import t from 'tap'

const fixtures = require('haraka-test-fixtures')
const { Address } = require('@haraka/email-address')

process.env.MOAT_DATA_DIR = t.testdir()
const { runtime } = require('../../appliance/smtp/runtime')
const { constants } = require('../../appliance/smtp/haraka')

const rt = runtime()
rt.tenants.addOrg('acme')
rt.tenants.addDomain('example.com', { org: 'acme', deliverTo: '127.0.0.1:2600' })
rt.tenants.addUser('alice@example.com')

function setup() {
  const plugin = new fixtures.plugin('moat-recipients')
  plugin.register()
  const connection = fixtures.connection.createConnection()
  connection.init_transaction()
  return { plugin, connection }
}

function rcpt(address: string): Promise<[number | undefined, unknown]> {
  const { plugin, connection } = setup()
  return new Promise((resolve) => {
    plugin.check_recipient((code?: number, msg?: unknown) => resolve([code, msg]), connection, [new Address(`<${address}>`)])
  })
}

t.test('registers its hook', async (t) => {
  const { plugin } = setup()
  t.same(plugin.hooks.rcpt, ['check_recipient'])
  t.equal(plugin.maxRecipients, 1000, 'default from config/moat-recipients.ini')
})

t.test('answers per recipient, table-driven', async (t) => {
  const cases: [string, number | undefined, RegExp | null][] = [
    ['alice@example.com', constants.OK, null],
    ['ALICE@EXAMPLE.COM', constants.OK, null],
    ['bob@example.com', constants.DENY, /5\.1\.1 No such user/],
    ['alice@elsewhere.test', constants.DENY, /5\.7\.1 Relaying denied/],
    ['alice%elsewhere.test@example.com', constants.DENY, /5\.1\.3/],
  ]
  for (const [address, code, msg] of cases) {
    const [got, text] = await rcpt(address)
    t.equal(got, code, `${address}: got ${got}, want ${code}`)
    if (msg) t.match(String(text), msg, address)
  }
})

t.test('records the organisation of an accepted recipient for the later hooks', async (t) => {
  const { plugin, connection } = setup()
  await new Promise((resolve) => plugin.check_recipient(resolve, connection, [new Address('<alice@example.com>')]))
  t.match(connection.transaction.notes.moat.rcpts, [{ address: 'alice@example.com', orgId: rt.tenants.requireOrg('acme').id, tagMode: false }])
})

t.test('a database failure is a temporary error, never an accept or a 5xx', async (t) => {
  const { plugin, connection } = setup()
  const original = rt.recipients.resolve
  rt.recipients.resolve = () => {
    throw new Error('SQLITE_IOERR: disk I/O error')
  }
  t.teardown(() => {
    rt.recipients.resolve = original
  })
  const [code] = await new Promise<[number | undefined]>((resolve) =>
    plugin.check_recipient((c?: number) => resolve([c]), connection, [new Address('<alice@example.com>')]),
  )
  t.equal(code, constants.DENYSOFT)
})
