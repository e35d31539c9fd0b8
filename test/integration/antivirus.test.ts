/*
 * moat-antivirus against a real clamd (Debian's clamav-daemon) on loopback, with a signature
 * database made here: the EICAR test string as a body signature (no internet, no freshclam).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import Database from 'better-sqlite3'
import t, { type Test } from 'tap'
import { openDatabase } from '../../appliance/db/database'
import { Quarantine } from '../../appliance/services/quarantine'
import { freePort, moatOk, type RunningSmtp, smtpSend, startSink, startSmtp, workDir, provisionAcme } from '../helpers/appliance'

const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'

async function startClamd(dir: string): Promise<{ port: number; proc: ChildProcess }> {
  fs.mkdirSync(path.join(dir, 'db'), { recursive: true })
  fs.writeFileSync(path.join(dir, 'db/moat-test.ndb'), `Moat-Test-Eicar:0:*:${Buffer.from(EICAR).toString('hex')}\n`)
  const port = await freePort()
  fs.writeFileSync(
    path.join(dir, 'clamd.conf'),
    [`DatabaseDirectory ${path.join(dir, 'db')}`, `TCPSocket ${port}`, 'TCPAddr 127.0.0.1', 'Foreground yes', `LogFile ${path.join(dir, 'clamd.log')}`, 'StreamMaxLength 1M', ''].join('\n'),
  )
  const proc = spawn('clamd', ['-c', path.join(dir, 'clamd.conf')], { stdio: 'ignore' })
  const deadline = Date.now() + 30_000
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => s.end('zPING\0'))
      s.once('data', (d) => resolve(d.toString().startsWith('PONG')))
      s.once('error', () => resolve(false))
    })
    if (up) return { port, proc }
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`clamd did not start: ${fs.readFileSync(path.join(dir, 'clamd.log'), 'utf8').slice(-2000)}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

function withAttachment(subject: string, content: Buffer): Buffer {
  const b64 = content.toString('base64').replace(/.{1,76}/g, '$&\r\n')
  return Buffer.from(
    `From: x@outside.test\r\nTo: alice@example.com\r\nSubject: ${subject}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n` +
      `--b1\r\nContent-Type: text/plain\r\n\r\nPlease see the attached document.\r\n` +
      `--b1\r\nContent-Type: application/octet-stream; name="report.txt"\r\nContent-Disposition: attachment; filename="report.txt"\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64}--b1--\r\n`,
  )
}

async function appliance(t: Test, env: Record<string, string>, ini?: string): Promise<{ dir: string; smtp: RunningSmtp }> {
  const dir = workDir(t)
  const sink = await startSink()
  t.teardown(() => sink.close())
  provisionAcme(dir, sink.port)
  if (ini) {
    fs.mkdirSync(path.join(dir, 'haraka/config'), { recursive: true })
    fs.writeFileSync(path.join(dir, 'haraka/config/moat-antivirus.ini'), ini)
  }
  const smtp = await startSmtp(dir, env)
  t.teardown(() => smtp.stop())
  return { dir, smtp }
}

const send = (smtp: RunningSmtp, data: Buffer) => smtpSend(smtp.port, { from: 'x@outside.test', to: ['alice@example.com'], data })

t.test('with clamd: a virus is refused, clean mail passes, an oversized message is not called clean', async (t) => {
  const clamd = await startClamd(workDir(t))
  t.teardown(() => clamd.proc.kill())
  const { smtp } = await appliance(t, { MOAT_CLAMD: `127.0.0.1:${clamd.port}` })
  t.match(smtp.output(), /scanning with clamd at 127\.0\.0\.1/)
  const virus = await send(smtp, withAttachment('infected', Buffer.from(EICAR)))
  t.equal(virus.final.code, 554)
  t.match(virus.final.text, /5\.7\.1 Message rejected: virus found \(Moat-Test-Eicar/)
  const clean = await send(smtp, withAttachment('clean', Buffer.from('quarterly figures, nothing more')))
  t.equal(clean.final.code, 250)
  const big = await send(smtp, withAttachment('too big for clamd', Buffer.alloc(1_200_000, 'a')))
  t.equal(big.final.code, 451, 'over StreamMaxLength: tempfail, not clean')
})

t.test('outbound: a virus from a customer server is held in the outbound quarantine, not bounced', async (t) => {
  const clamd = await startClamd(workDir(t))
  t.teardown(() => clamd.proc.kill())
  const { dir, smtp } = await appliance(t, { MOAT_CLAMD: `127.0.0.1:${clamd.port}` })
  moatOk(dir, ['relay', 'add', 'acme', '127.0.0.5'])
  moatOk(dir, ['route', 'add', '*', `127.0.0.1:${await freePort()}`])
  const r = await smtpSend(smtp.port, { from: 'alice@example.com', to: ['someone@example.net'], data: withAttachment('outbound infected', Buffer.from(EICAR)), localAddress: '127.0.0.5' })
  t.equal(r.final.code, 250, 'accepted from our own customer')
  const db = new Database(path.join(dir, 'moat.db'), { readonly: true })
  t.teardown(() => db.close())
  const q = db.prepare(`SELECT q.direction, q.verdict, m.symbols FROM quarantine q JOIN messages m ON m.id = q.message_id`).get() as { direction: string; verdict: string; symbols: string }
  t.match(q, { direction: 'out', verdict: 'surespam' })
  t.match(q.symbols, /AV_MOAT_TEST_EICAR/)
  t.equal((db.prepare(`SELECT count(*) AS n FROM deliveries`).get() as { n: number }).n, 0, 'nothing delivered')
  const counted = db.prepare(`SELECT spam FROM sender_counts WHERE address = 'alice@example.com'`).get() as { spam: number }
  t.equal(counted.spam, 1, 'counted against the sender')
})

t.test('infected mail can go to the quarantine instead (reject.virus=false)', async (t) => {
  const clamd = await startClamd(workDir(t))
  t.teardown(() => clamd.proc.kill())
  const { dir, smtp } = await appliance(t, { MOAT_CLAMD: `127.0.0.1:${clamd.port}` }, '[main]\ntimeout_ms=10000\non_error=tempfail\n[reject]\nvirus=false\n')
  const r = await send(smtp, withAttachment('quarantine me', Buffer.from(EICAR)))
  t.equal(r.final.code, 250)
  const q = JSON.parse(moatOk(dir, ['quarantine', 'list', '--json']))
  t.equal(q.length, 1)
  t.equal(q[0].verdict, 'surespam')
  t.ok(q[0].symbols.some((s: { name: string }) => s.name === 'AV_MOAT_TEST_EICAR_UNOFFICIAL'), JSON.stringify(q[0].symbols))
})

t.test('clamd down: 451 by default, or accept-and-tag', async (t) => {
  const dead = await freePort()
  const { smtp } = await appliance(t, { MOAT_CLAMD: `127.0.0.1:${dead}` })
  const r = await send(smtp, withAttachment('scanner down', Buffer.from('hello')))
  t.equal(r.final.code, 451)
  const tagged = await appliance(t, { MOAT_CLAMD: `127.0.0.1:${dead}` }, '[main]\ntimeout_ms=5000\non_error=accept\n[reject]\nvirus=true\n')
  const r2 = await send(tagged.smtp, withAttachment('scanner down, tagged', Buffer.from('hello')))
  t.equal(r2.final.code, 250)
  const db = new Database(path.join(tagged.dir, 'moat.db'), { readonly: true })
  t.teardown(() => db.close())
  const row = db.prepare(`SELECT symbols FROM messages`).get() as { symbols: string }
  t.match(row.symbols, /AV_UNSCANNED/)
})

t.test('no clamd configured: the filter is off, says so, and mail flows', async (t) => {
  const { smtp } = await appliance(t, {})
  t.match(smtp.output(), /antivirus is OFF/)
  const r = await send(smtp, withAttachment('no av', Buffer.from(EICAR)))
  t.equal(r.final.code, 250)
})

t.test('an organisation that quarantines viruses: accepted, kept as a virus, released by admins only', async (t) => {
  const clamd = await startClamd(workDir(t))
  t.teardown(() => clamd.proc.kill())
  const { dir, smtp } = await appliance(t, { MOAT_CLAMD: `127.0.0.1:${clamd.port}` })
  moatOk(dir, ['org', 'policy', 'acme', '--virus', 'quarantine'])
  const r = await send(smtp, withAttachment('virus, quarantined by policy', Buffer.from(EICAR)))
  t.equal(r.final.code, 250)
  const [entry] = JSON.parse(moatOk(dir, ['quarantine', 'list', '--json']))
  t.match(entry, { verdict: 'surespam', reason: 'virus' })
  const db = openDatabase(path.join(dir, 'moat.db'))
  t.teardown(() => db.close())
  t.throws(() => new Quarantine(db).release(entry.id, undefined, Date.now(), 'user'), /holds a virus: only an administrator/)
  moatOk(dir, ['org', 'policy', 'acme', '--virus', 'reject'])
  const again = await send(smtp, withAttachment('virus, refused by policy', Buffer.from(EICAR)))
  t.equal(again.final.code, 554, 'the policy applies at once, without a restart')
})
