/*
 * moat-attachments' actions per organisation over real SMTP: strip (the rest delivered with
 * Moat-Attachment-Warning.txt, the original kept for an administrator), quarantine, reject.
 */
import path from 'node:path'
import PostalMime from 'postal-mime'
import t from 'tap'
import { openDatabase } from '../../appliance/db/database'
import { Quarantine } from '../../appliance/services/quarantine'
import { moat, moatOk, type RunningSmtp, type Sink, smtpSend, startSink, startSmtp, workDir } from '../helpers/appliance'

const MZ = Buffer.from([0x4d, 0x5a, 0x90, 0, 3, 0, 0, 0, 4, 0, 0, 0, 0xff, 0xff, 0, 0])
const EXE_B64 = MZ.toString('base64')
const PDF_PART = `Content-Type: application/pdf; name="terms.pdf"\r\nContent-Disposition: attachment; filename="terms.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n${Buffer.from('%PDF-1.4\n%harmless\n').toString('base64')}\r\n`

function withExe(to: string, subject: string): Buffer {
  return Buffer.from(
    `From: Billing <billing@outside.test>\r\nTo: ${to}\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@outside.test>\r\nDate: ${new Date().toUTCString()}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n` +
      '--b\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nHello, the invoice and our terms are attached. Kind regards, the billing team\r\n' +
      `--b\r\nContent-Type: application/octet-stream; name="invoice.pdf.exe"\r\nContent-Disposition: attachment; filename="invoice.pdf.exe"\r\nContent-Transfer-Encoding: base64\r\n\r\n${EXE_B64}\r\n` +
      `--b\r\n${PDF_PART}--b--\r\n`,
  )
}

let dir: string
let sink: Sink
let smtp: RunningSmtp

t.before(async () => {
  dir = workDir(t)
  sink = await startSink()
  const to = `127.0.0.1:${sink.port}`
  for (const [org, domain, user, action] of [
    ['acme', 'example.com', 'alice', 'strip'],
    ['beta', 'beta.example', 'bob', 'reject'],
    ['gamma', 'gamma.example', 'carol', null],
  ] as const) {
    moatOk(dir, ['org', 'add', org])
    moatOk(dir, ['domain', 'add', domain, '--org', org, '--deliver-to', to])
    moatOk(dir, ['user', 'add', `${user}@${domain}`])
    if (action) moatOk(dir, ['org', 'policy', org, '--attachments', action])
  }
  smtp = await startSmtp(dir)
})
t.teardown(async () => {
  await smtp?.stop()
  await sink?.close()
})

const entriesFor = (rcpt: string) => JSON.parse(moatOk(dir, ['quarantine', 'list', '--json', '--rcpt', rcpt, '--all']))

t.test('the policy is validated and shown', async (t) => {
  const r = moat(dir, ['org', 'policy', 'acme', '--attachments', 'delete'])
  t.not(r.code, 0)
  t.match(r.stderr, /attachment action must be one of strip, quarantine, reject/)
  t.match(moatOk(dir, ['org', 'policy', 'acme']), /attachment_action: strip/)
  t.match(moatOk(dir, ['org', 'policy', 'gamma']), /attachment_action: quarantine/)
})

t.test('strip: delivered without the executable, with the warning; the original waits for an admin', async (t) => {
  const before = sink.messages.length
  const sent = withExe('alice@example.com', 'invoice 1')
  const r = await smtpSend(smtp.port, { from: 'billing@outside.test', to: ['alice@example.com'], data: sent })
  t.equal(r.final.code, 250)
  const [got] = (await sink.waitFor(before + 1)).slice(before)
  t.same(got.to, ['alice@example.com'])
  t.notOk(got.data.includes(EXE_B64), 'the executable did not reach the mail server')
  t.ok(got.data.includes(PDF_PART), 'the harmless attachment arrived byte for byte')
  const parsed = await PostalMime.parse(got.data)
  t.same(parsed.attachments.map((a) => a.filename), ['Moat-Attachment-Warning.txt', 'terms.pdf'])
  t.match(parsed.text, /^WARNING: Moat removed an attachment[\s\S]*invoice\.pdf\.exe[\s\S]*the invoice and our terms are attached/)

  const [entry] = entriesFor('alice@example.com')
  t.match(entry, { verdict: 'surespam', reason: 'attachment', subject: 'invoice 1' })
  t.ok(entry.symbols.some((s: { name: string; weight: number; detail: string }) => s.name === 'ATTACH_EXECUTABLE' && s.weight === 0 && /^removed: /.test(s.detail)))
  const archived = JSON.parse(moatOk(dir, ['archive', 'search', 'subject:"invoice 1"', '--json']))
  t.equal(archived.length, 1)
  const exported = moat(dir, ['archive', 'export', String(archived[0].id)])
  t.ok(Buffer.from(exported.stdout, 'latin1').includes(EXE_B64), 'the archive keeps the original')

  const db = openDatabase(path.join(dir, 'moat.db'))
  t.teardown(() => db.close())
  t.throws(() => new Quarantine(db).release(entry.id, undefined, Date.now(), 'user'), /only an administrator can release it/)

  moatOk(dir, ['quarantine', 'release', String(entry.id)])
  const [released] = (await sink.waitFor(before + 2)).slice(before + 1)
  t.ok(released.data.includes(EXE_B64), 'an administrator released the original, attachment and all')
  t.match(released.data.toString('latin1'), /^X-Moat-Verdict: clean; released/m, 'clean but for what was stripped')
  t.match(released.data.toString('latin1'), /^X-Moat-Symbols: .*ATTACH_EXECUTABLE\(0\)/m)
})

t.test('reject: refused at DATA with 554 when every recipient organisation says so', async (t) => {
  const r = await smtpSend(smtp.port, { from: 'billing@outside.test', to: ['bob@beta.example'], data: withExe('bob@beta.example', 'invoice 2') })
  t.equal(r.final.code, 554)
  t.match(r.final.text, /dangerous attachment/)
})

t.test('quarantine (the default): nothing delivered, surespam for a dangerous attachment', async (t) => {
  const before = sink.messages.length
  const r = await smtpSend(smtp.port, { from: 'billing@outside.test', to: ['carol@gamma.example'], data: withExe('carol@gamma.example', 'invoice 3') })
  t.equal(r.final.code, 250)
  const [entry] = entriesFor('carol@gamma.example')
  t.match(entry, { verdict: 'surespam', reason: 'attachment' })
  await new Promise((r) => setTimeout(r, 1000))
  t.equal(sink.messages.length, before, 'nothing delivered')
})

t.test('organisations that disagree: no refusal; each gets its own policy', async (t) => {
  const before = sink.messages.length
  const r = await smtpSend(smtp.port, { from: 'billing@outside.test', to: ['alice@example.com', 'bob@beta.example'], data: withExe('alice@example.com, bob@beta.example', 'invoice 4') })
  t.equal(r.final.code, 250, 'not every organisation rejects')
  const [got] = (await sink.waitFor(before + 1)).slice(before)
  t.same(got.to, ['alice@example.com'], 'only the stripping organisation gets mail')
  t.notOk(got.data.includes(EXE_B64))
  t.match(entriesFor('bob@beta.example').find((e: { subject: string }) => e.subject === 'invoice 4'), { verdict: 'surespam', reason: 'attachment' })
})

t.test('moat org suspend: mail for a suspended organisation is refused at RCPT, and flows again when resumed', async (t) => {
  t.match(moatOk(dir, ['org', 'suspend', 'gamma', 'on']), /gamma suspended/)
  const r = await smtpSend(smtp.port, { from: 'billing@outside.test', to: ['carol@gamma.example'], data: Buffer.from('Subject: hi\r\n\r\nhello\r\n') })
  t.equal(r.final.code, 550)
  t.match(r.final.text, /organisation is suspended/)
  t.match(moatOk(dir, ['org', 'suspend', 'gamma', 'off']), /gamma resumed/)
  const again = await smtpSend(smtp.port, { from: 'billing@outside.test', to: ['carol@gamma.example'], data: Buffer.from('Subject: hi\r\n\r\nhello\r\n') })
  t.equal(again.final.code, 250)
})

t.test('a strip rule removes the attachments it names for its organisation only, and keeps the original', async (t) => {
  moatOk(dir, ['rule', 'add', 'NO_ZIPS_FOR_GAMMA', '--org', 'gamma', '--action', 'strip', '--what', '{"all":[{"recipient":"^carol@"},{"attachment":"\\\\.zip$"}]}', '--description', 'gamma takes no archives'])
  t.teardown(() => moatOk(dir, ['rule', 'remove', 'NO_ZIPS_FOR_GAMMA']))
  await new Promise((r) => setTimeout(r, 2100)) // the SMTP service re-reads the rules every 2 s
  const zip = Buffer.from('PK\x03\x04 not really a zip, but named like one').toString('base64')
  const mail = (to: string, subject: string) =>
    Buffer.from(
      `From: Billing <billing@outside.test>\r\nTo: ${to}\r\nSubject: ${subject}\r\nDate: ${new Date().toUTCString()}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="z"\r\n\r\n` +
        '--z\r\nContent-Type: text/plain\r\n\r\nThe quarterly figures are attached, as promised at the meeting.\r\n' +
        `--z\r\nContent-Type: application/zip; name="figures.zip"\r\nContent-Disposition: attachment; filename="figures.zip"\r\nContent-Transfer-Encoding: base64\r\n\r\n${zip}\r\n` +
        `--z\r\n${PDF_PART}--z--\r\n`,
    )
  const before = sink.messages.length
  const r = await smtpSend(smtp.port, { from: 'billing@outside.test', to: ['carol@gamma.example', 'alice@example.com'], data: mail('carol@gamma.example, alice@example.com', 'figures') })
  t.equal(r.final.code, 250)
  const got = await sink.waitFor(before + 2)
  const forCarol = got.slice(before).find((m) => m.to.includes('carol@gamma.example'))!
  const forAlice = got.slice(before).find((m) => m.to.includes('alice@example.com'))!
  t.notOk(forCarol.data.includes(zip), 'gamma gets no zip')
  const parsed = await PostalMime.parse(forCarol.data)
  t.same(parsed.attachments.map((a) => a.filename), ['Moat-Attachment-Warning.txt', 'terms.pdf'])
  t.match(Buffer.from(parsed.attachments[0].content as ArrayBuffer).toString(), /figures\.zip[\s\S]*removed by the rule NO_ZIPS_FOR_GAMMA/)
  t.ok(forAlice.data.includes(zip), 'the rule is not acme’s: alice gets the zip')
  const kept = entriesFor('carol@gamma.example').find((e: { subject: string }) => e.subject === 'figures')
  t.match(kept, { reason: 'attachment' }, 'the original is kept for an administrator')
  t.ok(kept.symbols.some((s: { name: string; weight: number }) => s.name === 'RULE_NO_ZIPS_FOR_GAMMA' && s.weight === 0))
})
