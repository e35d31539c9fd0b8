/*
 * What an attack and a crash found in the mail path (issue 24), over real SMTP: a message
 * Moat cannot keep whole is refused before 250; the archive keeps the bytes as received and
 * only the relayed copy is folded to SMTP's 998 octets; a bare CR is refused in the header as
 * in the body.
 */
import { spawnSync } from 'node:child_process'
import https from 'node:https'
import path from 'node:path'
import t from 'tap'
import { foldLongLines } from '../../appliance/smtp/long-lines'
import { moatOk, type RunningSmtp, type Sink, smtpSend, startSink, startSmtp, startWeb, until, workDir } from '../helpers/appliance'

let dir: string
let sink: Sink
let smtp: RunningSmtp

t.before(async () => {
  dir = workDir(t)
  sink = await startSink()
  moatOk(dir, ['org', 'add', 'acme'])
  moatOk(dir, ['domain', 'add', 'example.com', '--org', 'acme', '--deliver-to', `127.0.0.1:${sink.port}`])
  moatOk(dir, ['user', 'add', 'alice@example.com'])
  // Tag mode: whatever the verdict on these odd test messages, the copy is relayed.
  moatOk(dir, ['domain', 'add', 'tagged.example', '--org', 'acme', '--deliver-to', `127.0.0.1:${sink.port}`, '--tag-mode'])
  moatOk(dir, ['user', 'add', 'bob@tagged.example'])
  smtp = await startSmtp(dir)
})
t.teardown(async () => {
  await smtp?.stop()
  await sink?.close()
})

function exportRaw(id: number): Buffer {
  return spawnSync(process.execPath, [path.join(__dirname, '../../../bin/moat'), 'archive', 'export', String(id)], {
    env: { ...process.env, MOAT_DATA_DIR: dir },
    maxBuffer: 1 << 28,
  }).stdout as Buffer
}
const archived = (word: string): { id: number }[] => JSON.parse(moatOk(dir, ['archive', 'search', word, '--json']))
const send = (data: string | Buffer) => smtpSend(smtp.port, { from: 'bob@builders.test', to: ['alice@example.com'], data })
const head = (subject: string) =>
  `From: Bob <bob@builders.test>\r\nTo: alice@example.com\r\nSubject: ${subject}\r\nMessage-ID: <${subject}@builders.test>\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\n`

t.test('more header lines than Haraka keeps: 552 before 250, nothing stored', async (t) => {
  const many = head('manyheaders') + Array.from({ length: 1500 }, (_, i) => `X-Filler-${i}: value ${i}\r\n`).join('') + '\r\nbody words\r\n'
  let r = await send(many)
  t.equal(r.final.code, 552, r.final.text)
  t.match(r.final.text, /5\.3\.4 .*header too large/)
  // A big message with no blank line after its header: Haraka took it all for header.
  const noBlank = head('noblank') + Array.from({ length: 20_000 }, (_, i) => `line ${i} of a body that never got its blank line`).join('\r\n') + '\r\n'
  r = await send(noBlank)
  t.equal(r.final.code, 552, r.final.text)
  t.same(archived('manyheaders'), [], 'nothing of it is archived')
  t.same(archived('noblank'), [])
  // Just under the limit is kept whole, every field of it.
  const under = head('underlimit') + Array.from({ length: 900 }, (_, i) => `X-Filler-${i}: value ${i}\r\n`).join('') + '\r\nbody words\r\n'
  r = await send(under)
  t.equal(r.final.code, 250, r.final.text)
  const [hit] = archived('underlimit')
  t.ok(hit && exportRaw(hit.id).equals(Buffer.from(under)), 'a 905-line header is archived byte for byte')
})

t.test('long lines: archived as received, folded only on the relayed copy', async (t) => {
  const longHeader = 'X-Long: ' + Array.from({ length: 300 }, (_, i) => `tok${i}`).join(' ')
  const longBody = 'The minutes of the meeting are attached, see you all next week. '.repeat(40).trimEnd()
  const msg = Buffer.from(
    `${head('longline')}${longHeader}\r\nSubject2:no space after colon   \r\nX-Folded: first part\r\n\tsecond part\r\n\r\n${longBody}\r\nshort line\r\n${'x'.repeat(2500)}\r\n`,
    'latin1',
  )
  const r = await smtpSend(smtp.port, { from: 'bob@builders.test', to: ['bob@tagged.example'], data: msg })
  t.equal(r.final.code, 250, r.final.text)
  const [hit] = archived('longline')
  t.ok(hit, 'archived')
  t.ok(exportRaw(hit.id).equals(msg), 'moat archive export gives back the original bytes')
  const got = await until(() => sink.messages.find((x) => x.data.includes('Subject: longline')), 20_000, 'the relayed copy')
  t.ok(got, 'relayed to the customer server')
  const lines = got!.data.toString('latin1').split('\r\n')
  t.ok(lines.every((l) => l.length <= 998), 'no relayed line is over 998 octets')
  // Removing the inserted CRLF SPACE gives the original lines back.
  const relayed = got!.data.toString('latin1').replace(/\r\n /g, '')
  t.ok(relayed.includes(longHeader) && relayed.includes(longBody) && relayed.includes('x'.repeat(2500)), 'the relayed copy unfolds to the original text')
})

t.test('a line over 1 MiB is refused, not folded into the archive', async (t) => {
  const r = await send(`${head('hugeline')}\r\n${'y'.repeat(1_100_000)}\r\n`)
  t.equal(r.final.code, 554, r.final.text)
  t.match(r.final.text, /5\.6\.0 .*longer than 1048576/)
  t.same(archived('hugeline'), [])
})

t.test('a bare CR is refused in the header as in the body', async (t) => {
  let r = await send(head('barecrheader').replace('To: alice', 'To: al\rice') + '\r\nbody\r\n')
  t.equal(r.final.code, 550, r.final.text)
  t.match(r.final.text, /5\.6\.0 .*bare CR/)
  r = await send(head('barecrbody') + '\r\nbo\rdy\r\n')
  t.equal(r.final.code, 550, r.final.text)
  t.same([...archived('barecrheader'), ...archived('barecrbody')], [])
})

t.test('foldLongLines: breaks as Postfix does and leaves short mail alone', async (t) => {
  const short = Buffer.from('A: b\r\n\r\nshort\r\n')
  t.equal(foldLongLines(short), short, 'the same buffer when nothing is long')
  const raw = Buffer.from(`A: ${'z'.repeat(3000)}\r\n\r\n${'q'.repeat(1996)}\r\nend`)
  const folded = foldLongLines(raw)
  const lines = folded.toString().split('\r\n')
  t.ok(lines.every((l) => l.length <= 998))
  t.equal(folded.toString().replace(/\r\n /g, ''), raw.toString(), 'removing the inserted CRLF SPACE gives the original')
  t.ok(lines.slice(1).filter((l) => /^ [zq]/.test(l)).length >= 3, 'continuations start with a space')
})

t.test('with MOAT_WEB_TLS=1 the web UI sends HSTS', async (t) => {
  const web = await startWeb(dir, { MOAT_WEB_TLS: '1' })
  t.teardown(() => web.stop())
  const headers = await new Promise<Record<string, unknown>>((resolve, reject) => {
    https.get(`${web.url}/login`, { rejectUnauthorized: false }, (res) => {
      res.resume()
      resolve(res.headers)
    }).on('error', reject)
  })
  t.equal(headers['strict-transport-security'], 'max-age=31536000')
})
