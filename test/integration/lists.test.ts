/*
 * Allow and block lists over real SMTP: allowed spam is delivered, a blocked sender's mail is
 * quarantined (or refused when every recipient blocks it), an allow entry never lets a
 * dangerous attachment through, and — per organisation, off by default — whether an
 * allow-listed sender skips the deliberate blocklist delay (rbldnsd on loopback).
 */
import fs from 'node:fs'
import path from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import { corpusDir } from '../../appliance/engine/training'
import { moat, moatOk, message, provisionAcme, type RunningSmtp, type Sink, smtpSend, startRbldnsd, startSink, startSmtp, until, workDir } from '../helpers/appliance'

let dir: string
let sink: Sink
let smtp: RunningSmtp
let db: Database.Database

function spam(): Buffer {
  const d = path.join(corpusDir(), 'dev', 'spam', 'sa-spam')
  for (const f of fs.readdirSync(d).sort()) {
    const raw = fs.readFileSync(path.join(d, f), 'latin1')
    if (!raw.includes('\r') && raw.length < 20000) return Buffer.from(raw.replace(/\n/g, '\r\n').replace(/^Subject: .*$/m, 'Subject: lists test spam'), 'latin1')
  }
  throw new Error('no spam')
}

t.before(async () => {
  dir = workDir(t)
  const zones = await startRbldnsd(path.join(dir, 'zones'), { 'zen.test.moat': ['ip4set', ':127.0.0.2:Listed\n127.0.0.2\n'] })
  t.teardown(() => zones.proc.kill())
  sink = await startSink()
  const data = path.join(dir, 'data')
  dir = data
  provisionAcme(dir, sink.port)
  moatOk(dir, ['user', 'add', 'bob@example.com'])
  fs.mkdirSync(path.join(dir, 'haraka/config'), { recursive: true })
  fs.writeFileSync(
    path.join(dir, 'haraka/config/moat-dnsbl.ini'),
    '[main]\ntimeout_ms=500\ntries=1\ncheck_private=true\non_error=accept\ndelay_seconds=600\n[reject]\ndelay=true\n[zones]\nzen.test.moat = RBL_SPAMHAUS_ZEN, yes\n',
  )
  smtp = await startSmtp(dir, { MOAT_DNS_SERVER: `127.0.0.1:${zones.port}` })
  db = new Database(path.join(dir, 'moat.db'), { readonly: true })
})

t.teardown(async () => {
  db?.close()
  await smtp?.stop()
  await sink?.close()
})

const fate = (subject: string, rcpt: string) =>
  until(() => {
    const m = db.prepare(`SELECT m.id, m.symbols FROM messages m WHERE m.subject = ? ORDER BY m.id DESC LIMIT 1`).get(subject) as { id: number; symbols: string } | undefined
    if (!m) return undefined
    const q = db.prepare(`SELECT 1 FROM quarantine WHERE message_id = ? AND rcpt = ?`).get(m.id, rcpt)
    const d = db.prepare(`SELECT 1 FROM deliveries WHERE message_id = ? AND rcpt = ?`).get(m.id, rcpt)
    return { quarantined: !!q, delivered: !!d, symbols: m.symbols }
  }, 10_000, subject)

t.test('spam from an allow-listed sender is delivered; a blocked one is quarantined', async (t) => {
  const s = spam()
  const before = await smtpSend(smtp.port, { from: 'promo@spam.test', to: ['alice@example.com'], data: s })
  t.equal(before.final.code, 250)
  t.match(await fate('lists test spam', 'alice@example.com'), { quarantined: true })

  moatOk(dir, ['list', 'add', 'allow', 'promo@spam.test', '--user', 'alice@example.com'])
  moatOk(dir, ['list', 'add', 'block', '@nice.test', '--org', 'acme'])
  const allowed = await smtpSend(smtp.port, { from: 'promo@spam.test', to: ['alice@example.com', 'bob@example.com'], data: s })
  t.equal(allowed.final.code, 250)
  const a = await fate('lists test spam', 'alice@example.com')
  t.match(a, { quarantined: false, delivered: true }, 'alice allowed it: delivered')
  t.match(a.symbols, /ALLOWLISTED_SENDER/)
  t.match(await fate('lists test spam', 'bob@example.com'), { quarantined: true, delivered: false }, "bob did not: alice's list is hers")

  const clean = message({ From: 'news@mail.nice.test', To: 'alice@example.com', Subject: 'blocked newsletter', Date: new Date().toUTCString() }, 'Our monthly newsletter about gardening.\n')
  const blocked = await smtpSend(smtp.port, { from: 'news@mail.nice.test', to: ['alice@example.com', 'nobody-else@example.com'].slice(0, 1), data: clean })
  t.equal(blocked.final.code, 550, 'every recipient blocks it: refused')
  t.match(blocked.final.text, /Sender blocked/)
  // Alice allows it for herself: her entry comes before the organisation's block.
  moatOk(dir, ['list', 'add', 'allow', 'news@mail.nice.test', '--user', 'alice@example.com'])
  const mixed = await smtpSend(smtp.port, { from: 'news@mail.nice.test', to: ['alice@example.com', 'bob@example.com'], data: clean })
  t.equal(mixed.final.code, 250)
  t.match(await fate('blocked newsletter', 'alice@example.com'), { delivered: true })
  t.match(await fate('blocked newsletter', 'bob@example.com'), { quarantined: true }, 'for bob the organisation block holds')
})

t.test('an allow entry never lets a dangerous attachment through', async (t) => {
  const exe = Buffer.concat([Buffer.from('MZ'), Buffer.alloc(200, 0x90)]).toString('base64')
  const body = `--b\r\nContent-Type: text/plain\r\n\r\nthe invoice\r\n--b\r\nContent-Type: application/octet-stream; name="invoice.exe"\r\nContent-Disposition: attachment; filename="invoice.exe"\r\nContent-Transfer-Encoding: base64\r\n\r\n${exe}\r\n--b--\r\n`
  const data = Buffer.from(`From: promo@spam.test\r\nTo: alice@example.com\r\nSubject: allowed but armed\r\nDate: ${new Date().toUTCString()}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n${body}`)
  const r = await smtpSend(smtp.port, { from: 'promo@spam.test', to: ['alice@example.com'], data })
  t.equal(r.final.code, 250)
  const f = await fate('allowed but armed', 'alice@example.com')
  t.match(f, { quarantined: true, delivered: false })
  t.match(f.symbols, /ALLOWLIST_IGNORED/)
})

t.test('blocklist delay: allow-listing does not lift it, unless the organisation says so', async (t) => {
  const hello = message({ From: 'partner@friends.test', To: 'alice@example.com', Subject: 'from a listed partner', Date: new Date().toUTCString() }, 'Hello Alice.\n')
  moatOk(dir, ['list', 'add', 'allow', '@friends.test', '--org', 'acme'])
  const delayed = await smtpSend(smtp.port, { from: 'partner@friends.test', to: ['alice@example.com'], data: hello, localAddress: '127.0.0.2' })
  t.equal(delayed.final.code, 451, 'the long-standing policy: still delayed')
  moatOk(dir, ['org', 'policy', 'acme', '--allowlist-skips-rbl-delay', 'on'])
  const passed = await smtpSend(smtp.port, { from: 'partner@friends.test', to: ['alice@example.com'], data: hello, localAddress: '127.0.0.2' })
  t.equal(passed.final.code, 250, 'with the switch on, the allow-listed sender is not delayed')
  const stranger = await smtpSend(smtp.port, { from: 'someone@else.test', to: ['alice@example.com'], data: hello, localAddress: '127.0.0.2' })
  t.equal(stranger.final.code, 451, 'a sender not on the list still is')
  const bad = moat(dir, ['list', 'add', 'allow', 'not an address', '--org', 'acme'])
  t.equal(bad.code, 1)
  t.match(bad.stderr, /not an address or @domain/)
})
