/* moat-sanity through Haraka's test fixtures: what it refuses, what it only scores. */
import t from 'tap'

const fixtures = require('haraka-test-fixtures')

process.env.MOAT_DATA_DIR = t.testdir()
const { runtime } = require('../../appliance/smtp/runtime')
const { constants } = require('../../appliance/smtp/haraka')

const rt = runtime()
const org = rt.tenants.addOrg('acme')
rt.tenants.setPolicy('acme', { max_message_bytes: 5000 })

function run(raw: string | Buffer, opts: { bytes?: number; folded?: boolean } = {}): Promise<{ code?: number; msg?: unknown; symbols: string[] }> {
  const plugin = new fixtures.plugin('moat-sanity')
  plugin.register()
  const connection = fixtures.connection.createConnection()
  connection.init_transaction()
  const txn = connection.transaction
  const buf = Buffer.isBuffer(raw) ? raw : Buffer.from(raw)
  // The fixtures' message stream drops header lines (see shared/HARAKA-NOTES.md): hand the
  // raw bytes in where the plugin reads them.
  txn.notes.moat_raw = Promise.resolve(buf)
  txn.data_bytes = opts.bytes ?? buf.length
  txn.notes.moat = { rcpts: [{ address: 'a@example.com', orgId: org.id, domainId: 1, userId: null, tagMode: false }], verdicts: {} }
  if (opts.folded) txn.notes.data_line_length_exceeded = true
  return new Promise((resolve) => {
    plugin.check_message(
      (code?: number, msg?: unknown) => {
        const symbols = ((txn.results.get('moat-sanity')?.symbols ?? []) as { name: string }[]).map((s) => s.name)
        resolve({ code, msg, symbols })
      },
      connection,
    )
  })
}

const good = 'From: a@example.org\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@x>\r\nSubject: hi\r\n\r\nhello there\r\n'

t.test('a clean message passes with no symbols', async (t) => {
  const r = await run(good)
  t.equal(r.code, undefined)
  t.same(r.symbols, [])
})

t.test('refuses NUL and bare CR with 5.6.0', async (t) => {
  const nul = await run(good.replace('hello', 'hel\0lo'))
  t.equal(nul.code, constants.DENY)
  t.match(String(nul.msg), /5\.6\.0/)
  const cr = await run(good.replace('hello there', 'hello\rthere'))
  t.equal(cr.code, constants.DENY)
  t.match(String(cr.msg), /bare CR/)
})

t.test('enforces the organisation size limit with 5.3.4', async (t) => {
  const r = await run(good, { bytes: 6000 })
  t.equal(r.code, constants.DENY)
  t.match(String(r.msg), /5\.3\.4 .*limit of 5000/)
})

t.test('a line Haraka had to fold is refused: the message could not be kept whole', async (t) => {
  const r = await run(good, { folded: true })
  t.equal(r.code, constants.DENY)
  t.match(String(r.msg), /5\.6\.0 .*longer than/)
})

t.test('a line over 998 octets that Haraka kept whole is scored, not refused, by default', async (t) => {
  const r = await run(good.replace('hello there', 'word '.repeat(300)))
  t.equal(r.code, undefined)
  t.same(r.symbols, ['LONG_LINE'])
})
