/*
 * The outbound smarthost over real SMTP: relay control (registered networks, AUTH on the
 * submission port after STARTTLS, sender ownership), outbound scanning into the outbound
 * quarantine, held senders, BATV stamping and DKIM signing, checked at a loopback sink that
 * stands in for the internet.
 */
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import { corpusDir } from '../../appliance/engine/training'
import { message, moat, moatOk, provisionAcme, type RunningSmtp, type Sink, smtpSend, startSink, startSmtp, until, workDir } from '../helpers/appliance'

const { dkimVerify } = require('mailauth')

const PASSWORD = 'correct horse battery'
const SERVER_IP = '127.0.0.5'

let dir: string
let customer: Sink
let internet: Sink
let smtp: RunningSmtp
let db: Database.Database

t.before(async () => {
  dir = workDir(t)
  customer = await startSink()
  internet = await startSink()
  provisionAcme(dir, customer.port)
  moatOk(dir, ['user', 'add', 'bob@example.com'])
  moatOk(dir, ['alias', 'add', 'sales@example.com', 'alice@example.com'])
  moatOk(dir, ['org', 'add', 'globex'])
  moatOk(dir, ['domain', 'add', 'globex.test', '--org', 'globex', '--deliver-to', `127.0.0.1:${customer.port}`])
  moatOk(dir, ['relay', 'add', 'acme', `${SERVER_IP}/32`, '--description', 'Exchange'])
  moatOk(dir, ['route', 'add', '*', `127.0.0.1:${internet.port}`])
  const pw = moat(dir, ['user', 'password', 'alice@example.com'], `${PASSWORD}\n`)
  if (pw.code !== 0) throw new Error(pw.stderr)
  smtp = await startSmtp(dir)
  db = new Database(path.join(dir, 'moat.db'), { readonly: true })
})

t.teardown(async () => {
  db?.close()
  await smtp?.stop()
  await customer?.close()
  await internet?.close()
})

function swaks(args: string[]): { status: number | null; out: string } {
  const r = spawnSync('swaks', ['--timeout', '20', '--header', 'Subject: outbound test', ...args], { encoding: 'utf8' })
  return { status: r.status, out: `${r.stdout}${r.stderr}` }
}

const note = (subject: string, from = 'bob@example.com') =>
  message({ From: from, To: 'carol@example.net', Subject: subject, Date: new Date().toUTCString(), 'Message-ID': `<${subject.replace(/\W/g, '')}@example.com>` }, `Hello Carol,\n\n${subject}: the minutes of Tuesday's meeting are attached to the wiki page.\n\nBob\n`)

t.test('an unregistered client cannot relay, on either port', async (t) => {
  const r = await smtpSend(smtp.port, { from: 'bob@example.com', to: ['carol@example.net'], data: note('not relayed') })
  t.equal(r.final.code, 550)
  t.match(r.final.text, /5\.7\.1 Relaying denied/)
  const sub = await smtpSend(smtp.submissionPort, { from: 'bob@example.com', to: ['carol@example.net'], data: note('not relayed') })
  t.equal(sub.final.code, 530, 'submission wants AUTH before MAIL')
})

t.test("nmap's smtp-open-relay finds no open relay", async (t) => {
  // The script runs only on a port nmap calls smtp: say so in a services file of our own.
  const datadir = path.join(dir, 'nmap')
  fs.mkdirSync(datadir, { recursive: true })
  fs.writeFileSync(path.join(datadir, 'nmap-services'), `smtp\t${smtp.port}/tcp\t0.5\n`)
  const r = spawnSync('nmap', ['-n', '-Pn', '--datadir', datadir, '-p', String(smtp.port), '--script', 'smtp-open-relay', '--script-args', 'smtp-open-relay.domain=example.com', '127.0.0.1'], { encoding: 'utf8', timeout: 120_000 })
  t.equal(r.status, 0, r.stderr)
  t.match(r.stdout, /smtp-open-relay: Server doesn't seem to be an open relay/)
  t.notMatch(r.stdout, /Server is an open relay/)
})

t.test('a registered customer server relays with its own domains only', async (t) => {
  const before = internet.messages.length
  const r = await smtpSend(smtp.port, { from: 'bob@example.com', to: ['carol@example.net'], data: note('Minutes'), localAddress: SERVER_IP })
  t.equal(r.final.code, 250, r.final.text)
  const [m] = (await internet.waitFor(before + 1)).slice(before)
  t.match(m.from, /^prvs=\d{4}[0-9a-f]{6}=bob@example\.com$/, 'envelope sender carries a BATV tag')
  t.same(m.to, ['carol@example.net'])
  t.match(m.data.toString(), /^X-Moat-Bounce-Stamp: v=1; k=\d+; e=\d+; s=[\w-]{22}\r$/m)
  const row = db.prepare(`SELECT direction, verdict, org_id FROM messages WHERE subject = 'Minutes'`).get() as { direction: string; verdict: string }
  t.equal(row.direction, 'out', 'archived as outbound')
  t.equal(row.verdict, 'clean')
  const found = JSON.parse(moatOk(dir, ['archive', 'search', 'subject:minutes', '--json'])) as { direction: string }[]
  t.equal(found.length, 1, 'found in LiveArchive')

  const foreign = await smtpSend(smtp.port, { from: 'ceo@globex.test', to: ['carol@example.net'], data: note('spoof', 'ceo@globex.test'), localAddress: SERVER_IP })
  t.equal(foreign.final.code, 550, 'another tenant’s domain as sender')
  t.match(foreign.final.text, /5\.7\.1 Sender address rejected/)
  const unknownLocal = await smtpSend(smtp.port, { from: 'bob@example.com', to: ['nobody@example.com'], data: note('x'), localAddress: SERVER_IP })
  t.equal(unknownLocal.final.code, 550, 'an unknown user of our own domains is refused, not bounced later')
  const trick = await smtpSend(smtp.port, { from: 'bob@example.com', to: ['victim%elsewhere.test@example.net'], data: note('x'), localAddress: SERVER_IP })
  t.equal(trick.final.code, 550, 'percent hack refused even for a relay client')
})

t.test('submission: AUTH only after STARTTLS, then only as yourself', async (t) => {
  const plain = spawnSync('swaks', ['--server', `127.0.0.1:${smtp.submissionPort}`, '--quit-after', 'EHLO'], { encoding: 'utf8' })
  t.notMatch(plain.stdout, /250[- ]AUTH/, 'no AUTH offered in clear text')
  const port25 = swaks(['--server', `127.0.0.1:${smtp.port}`, '--tls', '--quit-after', 'EHLO'])
  t.notMatch(port25.out, /250[- ]AUTH/, 'no AUTH on the MX port')

  const before = internet.messages.length
  const ok = swaks(['--server', `127.0.0.1:${smtp.submissionPort}`, '--tls', '--auth', 'PLAIN', '--auth-user', 'alice@example.com', '--auth-password', PASSWORD, '--from', 'alice@example.com', '--to', 'dave@example.org'])
  t.equal(ok.status, 0, 'sent', { output: ok.out.slice(-600) })
  t.match(ok.out, /250[- ]AUTH PLAIN LOGIN/)
  t.match(ok.out, /235 2\.7\.0 Authentication successful/)
  const [m] = (await internet.waitFor(before + 1)).slice(before)
  t.match(m.from, /=alice@example\.com$/)
  const row = db.prepare(`SELECT direction, sender_login FROM messages ORDER BY id DESC LIMIT 1`).get() as { direction: string; sender_login: string }
  t.same(row, { direction: 'out', sender_login: 'alice@example.com' })

  const alias = swaks(['--server', `127.0.0.1:${smtp.submissionPort}`, '--tls', '--auth', 'LOGIN', '--auth-user', 'alice@example.com', '--auth-password', PASSWORD, '--from', 'sales@example.com', '--to', 'dave@example.org'])
  t.equal(alias.status, 0, 'her alias is hers', { output: alias.out.slice(-300) })

  const wrong = swaks(['--server', `127.0.0.1:${smtp.submissionPort}`, '--tls', '--auth', 'PLAIN', '--auth-user', 'alice@example.com', '--auth-password', 'guess guess guess', '--from', 'alice@example.com', '--to', 'dave@example.org'])
  t.not(wrong.status, 0)
  t.match(wrong.out, /535 5\.7\.8 Authentication failed/)

  const asBob = swaks(['--server', `127.0.0.1:${smtp.submissionPort}`, '--tls', '--auth', 'PLAIN', '--auth-user', 'alice@example.com', '--auth-password', PASSWORD, '--from', 'bob@example.com', '--to', 'dave@example.org'])
  t.not(asBob.status, 0)
  t.match(asBob.out, /550 5\.7\.1 Sender address rejected: not owned by user alice@example\.com/)
})

t.test('DKIM: the record to publish, then signed mail that verifies', async (t) => {
  const info = JSON.parse(moatOk(dir, ['domain', 'dkim', 'example.com', '--enable', '--json'])) as { name: string; record: string; enabled: boolean }
  t.ok(info.enabled)
  t.match(info.record, /^v=DKIM1; k=rsa; p=[A-Za-z0-9+/=]{300,}$/)
  // The signing key is read at most every 5 s by the SMTP process.
  await new Promise((r) => setTimeout(r, 5500))
  const before = internet.messages.length
  const r = await smtpSend(smtp.port, { from: 'bob@example.com', to: ['carol@example.net'], data: note('Signed'), localAddress: SERVER_IP })
  t.equal(r.final.code, 250)
  const [m] = (await internet.waitFor(before + 1)).slice(before)
  t.match(m.data.toString(), /^DKIM-Signature: .*d=example\.com/m)
  const resolver = async (name: string, type: string) => {
    if (type === 'TXT' && name === info.name) return [[info.record]]
    throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' })
  }
  const v = await dkimVerify(m.data, { resolver })
  t.equal(v.results[0]?.status?.result, 'pass', JSON.stringify(v.results[0]?.status))
})

function spamMessage(): Buffer {
  const dirPath = path.join(corpusDir(), 'dev', 'spam', 'sa-spam')
  for (const f of fs.readdirSync(dirPath).sort()) {
    const raw = fs.readFileSync(path.join(dirPath, f), 'latin1')
    if (!raw.includes('\r') && raw.length < 20000) return Buffer.from(raw.replace(/\n/g, '\r\n'), 'latin1')
  }
  throw new Error('no spam in the corpus')
}

t.test('outbound spam goes to the outbound quarantine; a sender over the limit is held, then released', async (t) => {
  moatOk(dir, ['org', 'policy', 'acme', '--outbound-spam', '2', '--spam', '4'])
  const before = internet.messages.length
  for (let i = 0; i < 2; i++) {
    const r = await smtpSend(smtp.port, { from: 'spammer@example.com', to: ['victim@example.net'], data: spamMessage(), localAddress: SERVER_IP })
    t.equal(r.final.code, 250, 'accepted, not bounced to a possibly forged sender')
  }
  const q = db.prepare(`SELECT q.direction, q.verdict FROM quarantine q JOIN messages m ON m.id = q.message_id WHERE m.mail_from = 'spammer@example.com'`).all() as { direction: string }[]
  t.equal(q.length, 2)
  t.ok(q.every((x) => x.direction === 'out'), 'outbound quarantine')
  const held = JSON.parse(moatOk(dir, ['sender', 'list', '--json'])) as { address: string; reason: string }[]
  t.equal(held.length, 1)
  t.equal(held[0].address, 'spammer@example.com')
  t.match(held[0].reason, /2 spam or virus messages within an hour/)
  const alert = db.prepare(`SELECT kind, message FROM alerts ORDER BY id DESC LIMIT 1`).get() as { kind: string; message: string }
  t.equal(alert.kind, 'sender-held')

  const clean = await smtpSend(smtp.port, { from: 'spammer@example.com', to: ['victim@example.net'], data: note('Held one', 'spammer@example.com'), localAddress: SERVER_IP })
  t.equal(clean.final.code, 250)
  await new Promise((r) => setTimeout(r, 2500))
  t.equal(internet.messages.length, before, 'nothing of the held sender went out')
  const d = db.prepare(`SELECT d.held, d.state FROM deliveries d JOIN messages m ON m.id = d.message_id WHERE m.subject = 'Held one'`).get()
  t.same(d, { held: 1, state: 'pending' })

  t.match(moatOk(dir, ['sender', 'release', 'spammer@example.com']), /1 held deliveries go out/)
  const [m] = (await internet.waitFor(before + 1)).slice(before)
  t.match(m.data.toString(), /Subject: Held one/)
})

function bounceTo(rcpt: string, original: string): Buffer {
  return message(
    {
      From: 'Mail Delivery System <MAILER-DAEMON@mx.example.net>',
      To: rcpt,
      Subject: 'Undelivered Mail Returned to Sender',
      Date: new Date().toUTCString(),
      'Content-Type': 'multipart/report; report-type=delivery-status; boundary="b1"',
    },
    `--b1\nContent-Type: text/plain\n\nThis is the mail system at host mx.example.net.\nI'm sorry to have to inform you that your message could not be delivered.\n\n--b1\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\nFinal-Recipient: rfc822; carol@example.net\nAction: failed\nStatus: 5.1.1\n\n--b1\nContent-Type: text/rfc822-headers\n\n${original}\n--b1--\n`,
  )
}

t.test('bounces: a valid stamp is delivered; none, forged or expired goes to the quarantine as surespam', async (t) => {
  const before = internet.messages.length
  const sent = await smtpSend(smtp.port, { from: 'bob@example.com', to: ['carol@example.net'], data: note('Will bounce'), localAddress: SERVER_IP })
  t.equal(sent.final.code, 250)
  const [out] = (await internet.waitFor(before + 1)).slice(before)
  const tagged = out.from
  const headers = out.data.toString().split('\r\n\r\n')[0]

  const bounce = async (rcpt: string, subject: string, original = 'From: bob@example.com\nSubject: hi') => {
    const data = bounceTo(rcpt, original.replace('Subject: hi', `Subject: ${subject}`))
    const r = await smtpSend(smtp.port, { from: '', to: [rcpt], data })
    return r
  }
  const c0 = customer.messages.length
  const good = await bounce(tagged, 'real bounce')
  t.equal(good.final.code, 250, good.final.text)
  const [delivered] = (await customer.waitFor(c0 + 1)).slice(c0)
  t.same(delivered.to, ['bob@example.com'], 'delivered to the untagged address')
  t.equal(delivered.from, '')

  const verdictOf = (subject: string) =>
    until(() => db.prepare(`SELECT m.verdict, m.symbols, q.verdict AS qv FROM messages m LEFT JOIN quarantine q ON q.message_id = m.id WHERE m.subject = 'Undelivered Mail Returned to Sender' AND m.id > ?
      ORDER BY m.id DESC LIMIT 1`).get(lastId) as { verdict: string; symbols: string; qv: string } | undefined, 5000, subject)
  let lastId = (db.prepare(`SELECT max(id) AS id FROM messages`).get() as { id: number }).id

  const none = await bounce('bob@example.com', 'backscatter')
  t.equal(none.final.code, 250)
  let v = await verdictOf('none')
  t.equal(v.qv, 'surespam', 'no stamp: quarantined as surespam')
  t.match(v.symbols, /BOUNCE_NO_STAMP/)
  lastId = (db.prepare(`SELECT max(id) AS id FROM messages`).get() as { id: number }).id

  const forgedTag = tagged.replace(/=(\d{4})([0-9a-f]{6})=/, (_, kd: string, sig: string) => `=${kd}${sig.startsWith('0') ? '1' : '0'}${sig.slice(1)}=`)
  const forged = await bounce(forgedTag, 'forged')
  t.equal(forged.final.code, 250)
  v = await verdictOf('forged')
  t.equal(v.qv, 'surespam')
  t.match(v.symbols, /BOUNCE_STAMP_FORGED/)
  lastId = (db.prepare(`SELECT max(id) AS id FROM messages`).get() as { id: number }).id

  // A stamp made with the appliance's own key ten days ago.
  const rw = new Database(path.join(dir, 'moat.db'))
  const { BounceKeys } = require('../../appliance/services/bounce-keys')
  const old = new BounceKeys(rw).tagAddress('bob@example.com', Date.now() - 10 * 86_400_000)
  rw.close()
  const expired = await bounce(old, 'expired')
  t.equal(expired.final.code, 250)
  v = await verdictOf('expired')
  t.equal(v.qv, 'surespam')
  t.match(v.symbols, /BOUNCE_STAMP_EXPIRED/)
  lastId = (db.prepare(`SELECT max(id) AS id FROM messages`).get() as { id: number }).id

  // A server that bounces to the From: address but quotes our headers.
  const c1 = customer.messages.length
  const quoted = await bounce('bob@example.com', 'quoted', headers.replace(/\r\n/g, '\n'))
  t.equal(quoted.final.code, 250)
  await customer.waitFor(c1 + 1)
  v = await verdictOf('quoted')
  t.match(v.symbols, /BOUNCE_STAMP_VALID/)
  t.equal(v.qv, null, 'delivered, not quarantined')
  lastId = (db.prepare(`SELECT max(id) AS id FROM messages`).get() as { id: number }).id

  // The header stamp is bound to its sender: moved to another user it is forged.
  const moved = await bounce('alice@example.com', 'moved', headers.replace(/\r\n/g, '\n'))
  t.equal(moved.final.code, 250)
  v = await verdictOf('moved')
  t.equal(v.qv, 'surespam')
  lastId = (db.prepare(`SELECT max(id) AS id FROM messages`).get() as { id: number }).id

  // An auto-reply to mail that went out through us comes back to the tagged sender.
  const c2 = customer.messages.length
  const auto = await smtpSend(smtp.port, {
    from: '',
    to: [tagged],
    data: message({ From: 'carol@example.net', To: 'bob@example.com', Subject: 'Out of office', 'Auto-Submitted': 'auto-replied', Date: new Date().toUTCString() }, 'I am away until Monday.\n'),
  })
  t.equal(auto.final.code, 250)
  const [ar] = (await customer.waitFor(c2 + 1)).slice(c2)
  t.match(ar.data.toString(), /Subject: Out of office/)
})

t.test('backscatter policy per organisation: reject and tag', async (t) => {
  moatOk(dir, ['org', 'policy', 'acme', '--backscatter', 'reject'])
  const r = await smtpSend(smtp.port, { from: '', to: ['bob@example.com'], data: bounceTo('bob@example.com', 'Subject: x') })
  t.equal(r.final.code, 550)
  t.match(r.final.text, /backscatter/)
  moatOk(dir, ['org', 'policy', 'acme', '--backscatter', 'tag'])
  const c = customer.messages.length
  const tagged = await smtpSend(smtp.port, { from: '', to: ['bob@example.com'], data: bounceTo('bob@example.com', 'Subject: y') })
  t.equal(tagged.final.code, 250)
  const [m] = (await customer.waitFor(c + 1)).slice(c)
  t.match(m.data.toString(), /^X-Moat-Verdict: surespam/m)
  t.match(m.data.toString(), /^X-Moat-Symbols: .*BOUNCE_NO_STAMP/m)
  moatOk(dir, ['org', 'policy', 'acme', '--backscatter', 'quarantine'])
  const bad = moat(dir, ['org', 'policy', 'acme', '--backscatter', 'maybe'])
  t.equal(bad.code, 1)
  t.match(bad.stderr, /backscatter action must be one of/)
})
