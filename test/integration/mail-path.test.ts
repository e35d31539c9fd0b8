/*
 * The mail path end to end over real SMTP: the appliance's SMTP service, a real downstream
 * server (smtp-server) for the customer's mail server, and the moat CLI for provisioning.
 */
import fs from 'node:fs'
import path from 'node:path'
import Database from 'better-sqlite3'
import { corpusDir } from '../../appliance/engine/training'
import t from 'tap'
import { message, moat, moatOk, type RunningSmtp, type Sink, smtpSend, startSink, startSmtp, until, workDir } from '../helpers/appliance'

const CORPUS = path.join(corpusDir(), 'dev')

function corpusMessage(rel: string): Buffer {
  // Corpus files use LF; SMTP wants CRLF.
  return Buffer.from(fs.readFileSync(path.join(CORPUS, rel), 'latin1').replace(/\r?\n/g, '\r\n'), 'latin1')
}

function firstFile(dir: string, skip = 0): string {
  const files = fs.readdirSync(path.join(CORPUS, dir)).sort()
  for (const f of files.slice(skip)) {
    const raw = fs.readFileSync(path.join(CORPUS, dir, f))
    if (!raw.includes(13) && raw.length < 20000) return path.join(dir, f)
  }
  throw new Error(`no usable message in ${dir}`)
}

let dir: string
let sink: Sink
let smtp: RunningSmtp
let db: Database.Database

t.before(async () => {
  dir = workDir(t)
  sink = await startSink()
  moatOk(dir, ['org', 'add', 'acme'])
  moatOk(dir, ['org', 'add', 'globex'])
  moatOk(dir, ['domain', 'add', 'example.com', '--org', 'acme', '--deliver-to', `127.0.0.1:${sink.port}`])
  moatOk(dir, ['domain', 'add', 'tagged.example', '--org', 'acme', '--deliver-to', `127.0.0.1:${sink.port}`, '--tag-mode'])
  moatOk(dir, ['domain', 'add', 'globex.test', '--org', 'globex', '--deliver-to', `127.0.0.1:${sink.port}`])
  moatOk(dir, ['user', 'add', 'alice@example.com'])
  moatOk(dir, ['user', 'add', 'bob@tagged.example'])
  moatOk(dir, ['user', 'add', 'hank@globex.test'])
  smtp = await startSmtp(dir)
  db = new Database(path.join(dir, 'moat.db'), { readonly: true })
})

t.teardown(async () => {
  db?.close()
  await smtp?.stop()
  await sink?.close()
})

const HAM = () => corpusMessage(firstFile('ham/sa-easy_ham'))
const SPAM = () => corpusMessage(firstFile('spam/sa-spam'))

t.test('clean mail to a provisioned user is relayed to the domain server', async (t) => {
  const before = sink.messages.length
  const r = await smtpSend(smtp.port, { from: 'sender@outside.test', to: ['alice@example.com'], data: HAM() })
  t.equal(r.final.code, 250, `accepted: ${r.final.text}`)
  const got = (await sink.waitFor(before + 1))[before]
  t.same(got.to, ['alice@example.com'])
  t.equal(got.from, 'sender@outside.test')
  t.match(got.data.toString(), /^Received: from client\.test \(\[127\.0\.0\.1\]\) by .* \(Moat\)/m)
  t.notMatch(got.data.toString(), /X-Moat-Verdict/, 'no verdict headers outside tag mode')
  const state = await until(() => {
    const row = db.prepare(`SELECT state FROM deliveries ORDER BY id DESC LIMIT 1`).get() as { state: string }
    return row.state === 'delivered' && row
  }, 10_000, 'delivery recorded')
  t.equal(state.state, 'delivered')
})

t.test('STARTTLS with the certificate generated at first start (swaks)', async (t) => {
  t.ok(fs.existsSync(path.join(dir, 'tls/key.pem')) && fs.existsSync(path.join(dir, 'tls/cert.pem')), 'per-install key and certificate')
  const before = sink.messages.length
  const r = require('node:child_process').spawnSync('swaks', ['--server', `127.0.0.1:${smtp.port}`, '--tls', '--to', 'alice@example.com', '--from', 'tls@outside.test', '--header', 'Subject: over tls'], { encoding: 'utf8' })
  t.equal(r.status, 0, r.stdout.slice(-500))
  t.match(r.stdout, /TLS started with cipher TLSv1\.[23]/)
  t.match(r.stdout, /<~  250 Message accepted/)
  // Delivered before the next test counts the sink's messages (a CLI call there blocks this
  // process, and with it the sink, so a delivery still under way would land in its window).
  const got = (await sink.waitFor(before + 1))[before]
  t.match(got.data.toString(), /^Subject: over tls/m)
})

t.test('unknown recipients and foreign domains are refused at RCPT', async (t) => {
  const unknown = await smtpSend(smtp.port, { from: 's@outside.test', to: ['nobody@example.com'], data: HAM() })
  t.equal(unknown.final.code, 550)
  t.match(unknown.final.text, /5\.1\.1 No such user/)
  const foreign = await smtpSend(smtp.port, { from: 's@outside.test', to: ['victim@elsewhere.test'], data: HAM() })
  t.equal(foreign.final.code, 550)
  t.match(foreign.final.text, /5\.7\.1 Relaying denied/)
})

t.test('relay tricks through a provisioned domain are refused', async (t) => {
  moatOk(dir, ['domain', 'catch-all', 'example.com', 'on'])
  t.teardown(() => moatOk(dir, ['domain', 'catch-all', 'example.com', 'off']))
  for (const rcpt of [
    'victim%elsewhere.test@example.com',
    'elsewhere.test!victim@example.com',
    '"victim@elsewhere.test"@example.com',
    '@example.com:victim@elsewhere.test',
    'victim@elsewhere.test@example.com',
    'victim',
  ]) {
    const r = await smtpSend(smtp.port, { from: 's@outside.test', to: [rcpt], data: HAM() })
    t.ok(r.final.code >= 500 && r.final.code < 600, `${rcpt}: ${r.final.code} ${r.final.text}`)
  }
})

t.test('spam is quarantined per recipient and released on request', async (t) => {
  const before = sink.messages.length
  const r = await smtpSend(smtp.port, { from: 'spammer@outside.test', to: ['alice@example.com'], data: SPAM() })
  t.equal(r.final.code, 250)
  const list = JSON.parse(moatOk(dir, ['quarantine', 'list', '--json', '--rcpt', 'alice@example.com']))
  t.equal(list.length, 1)
  const entry = list[0]
  t.match(entry.verdict, /^(spam|surespam)$/)
  t.ok(entry.symbols.some((s: { name: string }) => s.name.startsWith('CLASSIFIER_9')), 'the classifier explains the verdict')
  const shown = moatOk(dir, ['quarantine', 'show', String(entry.id)])
  t.match(shown, /^\s+[\d.]+\s+CLASSIFIER_\d+\s+p=/m)
  await new Promise((res) => setTimeout(res, 1500))
  t.equal(sink.messages.length, before, 'quarantined mail is not delivered')

  t.match(moatOk(dir, ['quarantine', 'release', String(entry.id)]), /released/)
  const got = (await sink.waitFor(before + 1))[before]
  t.same(got.to, ['alice@example.com'])
  t.match(got.data.toString(), new RegExp(`^X-Moat-Verdict: ${entry.verdict}; released`, 'm'))
  const again = moat(dir, ['quarantine', 'release', String(entry.id)])
  t.equal(again.code, 1, 'a second release is refused')
  t.match(again.stderr, /released already/)
  t.equal(JSON.parse(moatOk(dir, ['quarantine', 'list', '--json', '--rcpt', 'alice@example.com'])).length, 0)

  moatOk(dir, ['quarantine', 'delete', String(entry.id)])
  t.equal(moat(dir, ['quarantine', 'show', String(entry.id)]).code, 1)
})

t.test('a tag-mode domain gets spam delivered with X-Moat headers', async (t) => {
  const before = sink.messages.length
  const r = await smtpSend(smtp.port, { from: 'spammer@outside.test', to: ['bob@tagged.example'], data: SPAM() })
  t.equal(r.final.code, 250)
  const got = (await sink.waitFor(before + 1))[before]
  const text = got.data.toString()
  t.match(text, /^X-Moat-Verdict: (spam|surespam)$/m)
  t.match(text, /^X-Moat-Score: [\d.]+$/m)
  t.match(text, /^X-Moat-Symbols: .*CLASSIFIER_/m)
  t.equal(JSON.parse(moatOk(dir, ['quarantine', 'list', '--json', '--rcpt', 'bob@tagged.example'])).length, 0)
})

t.test('an executable attachment sends the message to the quarantine as surespam', async (t) => {
  const exe = Buffer.from([0x4d, 0x5a, 0x90, 0, 3, 0, 0, 0]).toString('base64')
  const data = Buffer.from(
    'From: billing@outside.test\r\nTo: alice@example.com\r\nSubject: your invoice\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n' +
      '--b\r\nContent-Type: text/plain\r\n\r\nInvoice attached.\r\n' +
      `--b\r\nContent-Type: application/octet-stream; name="invoice.pdf.exe"\r\nContent-Transfer-Encoding: base64\r\n\r\n${exe}\r\n--b--\r\n`,
  )
  const r = await smtpSend(smtp.port, { from: 'billing@outside.test', to: ['alice@example.com'], data })
  t.equal(r.final.code, 250)
  const q = JSON.parse(moatOk(dir, ['quarantine', 'list', '--json', '--rcpt', 'alice@example.com']))
  const entry = q.find((e: { subject: string }) => e.subject === 'your invoice')
  t.equal(entry?.verdict, 'surespam')
  t.ok(entry.symbols.some((s: { name: string; detail?: string }) => s.name === 'ATTACH_DOUBLE_EXT' && s.detail === 'invoice.pdf.exe'))
})

t.test('the shipped UPS outbreak rule quarantines a fake UPS notice and counts the match', async (t) => {
  const fake = message(
    { From: '"UPS Quantum View" <notify@parcel-alerts.test>', To: 'alice@example.com', Subject: 'UPS Delivery Notification', 'Message-ID': '<ups1@parcel-alerts.test>', Date: new Date().toUTCString() },
    'Your package could not be delivered. Tracking number: 8843217765.',
  )
  const r = await smtpSend(smtp.port, { from: 'notify@parcel-alerts.test', to: ['alice@example.com'], data: fake })
  t.equal(r.final.code, 250)
  const entry = JSON.parse(moatOk(dir, ['quarantine', 'list', '--json', '--rcpt', 'alice@example.com'])).find((e: { subject: string }) => e.subject === 'UPS Delivery Notification')
  t.equal(entry?.verdict, 'surespam')
  const names = entry.symbols.map((s: { name: string }) => s.name)
  t.ok(names.includes('RULE_UPS_NOT_FROM_UPS') && names.includes('RULE_UPS_BAD_TRACKING_NUMBER'), names.join(' '))
  const rule = await until(() => JSON.parse(moatOk(dir, ['rule', 'list', '--json'])).find((x: { name: string; matches: number }) => x.name === 'UPS_NOT_FROM_UPS' && x.matches > 0), 5000, 'match counted')
  t.equal(rule.matches, 1)
})

t.test('thresholds are per organisation', async (t) => {
  moatOk(dir, ['org', 'policy', 'globex', '--spam', '100', '--surespam', '200'])
  const before = sink.messages.length
  const r = await smtpSend(smtp.port, { from: 'spammer@outside.test', to: ['hank@globex.test', 'alice@example.com'], data: SPAM() })
  t.equal(r.final.code, 250)
  const got = (await sink.waitFor(before + 1))[before]
  t.same(got.to, ['hank@globex.test'], 'globex tolerates it; acme quarantines it')
  const rows = db.prepare(`SELECT o.name, m.verdict FROM messages m JOIN organisations o ON o.id = m.org_id WHERE m.queue_id = (SELECT queue_id FROM messages ORDER BY id DESC LIMIT 1) ORDER BY o.name`).all()
  t.match(rows, [{ name: 'acme', verdict: /spam/ }, { name: 'globex', verdict: 'clean' }], 'one archive row per organisation')
  const acmeView = JSON.parse(moatOk(dir, ['archive', 'search', 'from:spammer', '--org', 'globex', '--json']))
  t.ok(acmeView.every((h: { org: string }) => h.org === 'globex'), 'an organisation sees only its own archive')
})

t.test('archive: search and byte-for-byte export', async (t) => {
  const body = 'Invoice 4711 attached.\n.leading dot line\n..two dots\nCaf\u00e9 cr\u00e8me, \u00fcml\u00e4ut\n'
  const raw = Buffer.concat([
    Buffer.from('From: Bob Builder <bob@builders.test>\r\nTo: alice@example.com\r\nSubject: quarterly invoice\r\nMessage-ID: <x1@builders.test>\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'),
    Buffer.from(body.replace(/\n/g, '\r\n'), 'utf8'),
  ])
  const r = await smtpSend(smtp.port, { from: 'bob@builders.test', to: ['alice@example.com'], data: raw })
  t.equal(r.final.code, 250)
  const hits = JSON.parse(moatOk(dir, ['archive', 'search', 'invoice from:bob', '--json']))
  t.equal(hits.length, 1)
  t.equal(hits[0].subject, 'quarterly invoice')
  t.equal(JSON.parse(moatOk(dir, ['archive', 'search', 'crème', '--json'])).length, 1, 'decoded 8-bit body is indexed')
  t.equal(JSON.parse(moatOk(dir, ['archive', 'search', 'subject:quarterly from:nobody', '--json'])).length, 0)
  t.equal(JSON.parse(moatOk(dir, ['archive', 'search', 'quart*', '--json'])).length, 1, 'prefix search')
  t.equal(JSON.parse(moatOk(dir, ['archive', 'search', 'date:2000-01-01', '--json'])).length, 0)
  const exported = require('node:child_process').spawnSync(process.execPath, [path.join(__dirname, '../../../bin/moat'), 'archive', 'export', String(hits[0].id)], {
    env: { ...process.env, MOAT_DATA_DIR: dir },
  }).stdout as Buffer
  t.ok(exported.equals(raw), 'export is byte for byte what the client sent')
  const bad = moat(dir, ['archive', 'search', 'date:yesterday'])
  t.equal(bad.code, 1)
  t.match(bad.stderr, /YYYY-MM-DD/)
})

t.test('provisioning changes apply to the running appliance at once', async (t) => {
  const mail = message({ From: 'x@outside.test', To: 'carol@example.com', Subject: 'hi carol' }, 'hello')
  let r = await smtpSend(smtp.port, { from: 'x@outside.test', to: ['carol@example.com'], data: mail })
  t.equal(r.final.code, 550)
  moatOk(dir, ['user', 'add', 'Carol@Example.com'])
  r = await smtpSend(smtp.port, { from: 'x@outside.test', to: ['carol@example.com'], data: mail })
  t.equal(r.final.code, 250, 'new user accepted without restart')
  moatOk(dir, ['alias', 'add', 'sales@example.com', 'carol@example.com'])
  r = await smtpSend(smtp.port, { from: 'x@outside.test', to: ['sales@example.com'], data: mail })
  t.equal(r.final.code, 250, 'alias accepted')
  moatOk(dir, ['user', 'remove', 'carol@example.com'])
  r = await smtpSend(smtp.port, { from: 'x@outside.test', to: ['carol@example.com'], data: mail })
  t.equal(r.final.code, 550, 'removed user refused')
  r = await smtpSend(smtp.port, { from: 'x@outside.test', to: ['sales@example.com'], data: mail })
  t.equal(r.final.code, 550, "removed user's alias refused")
  moatOk(dir, ['domain', 'catch-all', 'example.com', 'on'])
  r = await smtpSend(smtp.port, { from: 'x@outside.test', to: ['anything-at-all@example.com'], data: mail })
  t.equal(r.final.code, 250, 'catch-all accepts any local part')
  moatOk(dir, ['domain', 'catch-all', 'example.com', 'off'])
  r = await smtpSend(smtp.port, { from: 'x@outside.test', to: ['anything-at-all@example.com'], data: mail })
  t.equal(r.final.code, 550)
})

t.test('bad input gets a clear reply and loses nothing', async (t) => {
  const send = (data: Buffer) => smtpSend(smtp.port, { from: 'x@outside.test', to: ['alice@example.com'], data })
  const nul = await send(Buffer.from('Subject: nul\r\n\r\nbefore\0after\r\n'))
  t.equal(nul.final.code, 550)
  t.match(nul.final.text, /5\.6\.0 .*NUL/)

  const bareCr = await send(Buffer.from('Subject: smuggle\r\n\r\nline one\rMAIL FROM:<evil@x>\r\n'))
  t.equal(bareCr.final.code, 550)
  t.match(bareCr.final.text, /bare CR/)

  const bareLf = await send(Buffer.from('Subject: smuggle\r\n\r\nline one\n.\nMAIL FROM:<evil@x>\r\n'))
  t.equal(bareLf.final.code, 451, 'bare LF (the other smuggling half) is refused by Haraka')

  const longLine = await send(message({ From: 'x@outside.test', Subject: 'long line', 'Message-ID': '<ll@x>' }, `start ${'a'.repeat(3000)} end`))
  t.equal(longLine.final.code, 250, 'long lines are folded, scored and accepted')
  const ll = db.prepare(`SELECT symbols FROM messages WHERE subject = 'long line'`).get() as { symbols: string }
  t.ok((JSON.parse(ll.symbols) as { name: string }[]).some((s) => s.name === 'LONG_LINE'), 'LONG_LINE recorded')

  const malformed = await send(
    Buffer.from('From: x@outside.test\r\nSubject: broken mime\r\nContent-Type: multipart/mixed; boundary="zzz"\r\n\r\n--zzz\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!\r\n--zz\r\n'),
  )
  t.equal(malformed.final.code, 250, 'malformed MIME is accepted and kept')
  t.equal(JSON.parse(moatOk(dir, ['archive', 'search', 'subject:broken', '--json'])).length, 1)

  const eightBit = await send(Buffer.from('From: x@outside.test\r\nSubject: Gr\u00fc\u00dfe aus K\u00f6ln\r\n\r\nbody\r\n', 'utf8'))
  t.equal(eightBit.final.code, 250, '8-bit headers are accepted')
  t.equal(JSON.parse(moatOk(dir, ['archive', 'search', 'subject:Köln', '--json'])).length, 1)

  moatOk(dir, ['org', 'policy', 'acme', '--max-size', '20000'])
  const big = await send(message({ From: 'x@outside.test', Subject: 'big' }, 'x'.repeat(900).concat('\n').repeat(40)))
  moatOk(dir, ['org', 'policy', 'acme', '--max-size', '52428800'])
  t.equal(big.final.code, 552)
  t.match(big.final.text, /5\.3\.4 .*exceeds the limit of 20000/)
})
