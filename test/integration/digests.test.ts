/*
 * Quarantine digests end to end: off for new accounts; once on, the digest reaches the user's
 * server through the outbox; its release link opens a confirmation page (a link scanner's GET
 * releases nothing), the POST from it releases once, and the link then says it was used.
 */
import fs from 'node:fs'
import path from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import { corpusDir } from '../../appliance/engine/training'
import { spawnSync } from 'node:child_process'
import { freePort, moatOk, provisionAcme, ROOT, smtpSend, startSink, startSmtp, startWeb, until, workDir } from '../helpers/appliance'

function spam(subject: string): Buffer {
  const d = path.join(corpusDir(), 'dev', 'spam', 'sa-spam')
  for (const f of fs.readdirSync(d).sort()) {
    const raw = fs.readFileSync(path.join(d, f), 'latin1')
    if (!raw.includes('\r') && raw.length < 20000 && /^Subject: /m.test(raw)) return Buffer.from(raw.replace(/\n/g, '\r\n').replace(/^Subject: .*$/m, `Subject: ${subject}`), 'latin1')
  }
  throw new Error('no spam')
}

t.test('digests: off by default, then delivered with release links that need a confirming POST', async (t) => {
  const dir = workDir(t)
  const sink = await startSink()
  t.teardown(() => sink.close())
  provisionAcme(dir, sink.port)
  moatOk(dir, ['user', 'add', 'bob@example.com'])
  moatOk(dir, ['org', 'policy', 'acme', '--spam', '4', '--surespam', '100'])
  const webPort = await freePort()
  const publicUrl = `http://127.0.0.1:${webPort}`
  const smtp = await startSmtp(dir, { MOAT_PUBLIC_URL: publicUrl })
  for (const rcpt of ['alice@example.com', 'bob@example.com']) {
    t.equal((await smtpSend(smtp.port, { from: 'promo@spam.test', to: [rcpt], data: spam(`digest test for ${rcpt}`) })).final.code, 250)
  }
  const db = new Database(path.join(dir, 'moat.db'), { readonly: true })
  t.teardown(() => db.close())
  await until(() => (db.prepare(`SELECT count(*) AS n FROM quarantine`).get() as { n: number }).n === 2, 10_000, 'both quarantined')

  const job = () => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'bin/moat'), 'jobs', 'run', 'digests'], { env: { ...process.env, MOAT_DATA_DIR: dir, MOAT_PUBLIC_URL: publicUrl }, encoding: 'utf8' })
    if (r.status !== 0) throw new Error(r.stderr)
    return JSON.parse(r.stdout.trim().split('\n').at(-1)!)
  }
  t.same(job(), { sent: 0, entries: 0 }, 'nobody asked for a digest: none sent')

  t.match(moatOk(dir, ['user', 'digest', 'alice@example.com', 'on', '--frequency', 'hourly']), /digest for alice@example.com: on, hourly/)
  const before = sink.messages.length
  t.same(job(), { sent: 1, entries: 1 })
  const digest = await until(() => sink.messages.slice(before).find((m) => m.to.includes('alice@example.com')), 20_000, 'the digest at her server')
  t.equal(sink.messages.slice(before).filter((m) => m.to.includes('bob@example.com')).length, 0, 'bob did not ask for one')
  const decoded = digest.data.toString().match(/^[A-Za-z0-9+/=\r\n]{40,}$/gm)!.map((b) => Buffer.from(b.replace(/\r\n/g, ''), 'base64').toString('utf8')).join('\n')
  t.match(decoded, /digest test for alice@example\.com/)
  t.notMatch(decoded, /digest test for bob/, "only her own entries")
  const link = new RegExp(`${publicUrl.replace(/[.]/g, '\\.')}/r/([A-Za-z0-9_-]{20,})`).exec(decoded)
  t.ok(link, 'a release link to the public URL')
  t.match(digest.data.toString(), /^Auto-Submitted: auto-generated/m)
  t.same(job(), { sent: 0, entries: 0 }, 'not due again within the hour')

  const web = await startWeb(dir, { MOAT_WEB_PORT: String(webPort) })
  const url = `${web.url}/r/${link![1]}`
  const released = () => (db.prepare(`SELECT released_at FROM quarantine WHERE rcpt = 'alice@example.com'`).get() as { released_at: number | null }).released_at
  const look = await fetch(url)
  t.equal(look.status, 200)
  t.match(await look.text(), /Deliver this message to your mailbox\?/)
  await fetch(url, { method: 'HEAD' })
  t.equal(released(), null, 'a GET (what link scanners do) releases nothing')

  const c0 = sink.messages.length
  const post = await fetch(url, { method: 'POST' })
  t.equal(post.status, 200)
  t.match(await post.text(), /Delivered/)
  t.ok(released(), 'the POST from the page released it')
  const out = await until(() => sink.messages.slice(c0).find((m) => /digest test for alice/.test(m.data.toString())), 20_000, 'the released message')
  t.match(out.data.toString(), /^X-Moat-Verdict: spam; released/m)
  const again = await fetch(url, { method: 'POST' })
  t.equal(again.status, 410, 'single use')
  t.match(await again.text(), /used already/)
  t.equal((await fetch(`${web.url}/r/not-a-token`)).status, 404)
  await smtp.stop()
})
