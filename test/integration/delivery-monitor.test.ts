/*
 * Delivery monitoring against real loopback SMTP servers that accept, answer slowly,
 * defer for storage, greylist, reject for a blocklist listing, drop the connection, never
 * answer, or do not listen at all — and what the monitor recorded for each.
 */
import net from 'node:net'
import path from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import { freePort, message, moatOk, provisionAcme, type RunningSmtp, type Sink, smtpSend, startSink, startSmtp, until, workDir } from '../helpers/appliance'

interface Script {
  /** ms before the 220 banner; Infinity = never */
  bannerDelay?: number
  /** answer to a command, by its verb; 'close' hangs up */
  answer?: (verb: string) => string | 'close' | undefined
}

/** A tiny scripted SMTP server: just enough protocol to play one kind of trouble. */
async function scripted(script: Script): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    s.on('error', () => {})
    const reply = (line: string) => s.writable && s.write(`${line}\r\n`)
    if (script.bannerDelay !== Infinity) setTimeout(() => reply('220 test.example ESMTP'), script.bannerDelay ?? 0)
    let inData = false
    let buf = ''
    s.on('data', (d) => {
      buf += d.toString('latin1')
      let i: number
      while ((i = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, i)
        buf = buf.slice(i + 2)
        if (inData) {
          if (line === '.') {
            inData = false
            reply('250 2.0.0 queued')
          }
          continue
        }
        const verb = line.split(/[ :]/)[0].toUpperCase()
        const custom = script.answer?.(verb)
        if (custom === 'close') return s.destroy()
        if (custom) {
          reply(custom)
          continue
        }
        if (verb === 'EHLO' || verb === 'HELO') reply('250 test.example')
        else if (verb === 'DATA') {
          inData = true
          reply('354 go ahead')
        } else if (verb === 'QUIT') {
          reply('221 bye')
          s.end()
        } else reply('250 ok')
      }
    })
  })
  const port = await freePort()
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r))
  return {
    port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy()
        server.close(() => r())
      }),
  }
}

let dir: string
let customer: Sink
let smtp: RunningSmtp
const servers: { close(): Promise<void> }[] = []
const routes: Record<string, number> = {}

t.before(async () => {
  dir = workDir(t)
  customer = await startSink()
  provisionAcme(dir, customer.port)
  moatOk(dir, ['relay', 'add', 'acme', '127.0.0.5'])
  const accept = await startSink()
  servers.push(accept)
  routes['accept.test'] = accept.port
  const plays: Record<string, Script> = {
    'slow.test': { bannerDelay: 1500 },
    'full.test': { answer: (v) => (v === 'MAIL' ? '452 4.3.1 Insufficient system storage' : undefined) },
    'grey.test': { answer: (v) => (v === 'RCPT' ? '450 4.7.1 Greylisted, please try again later' : undefined) },
    'rbl.test': { answer: (v) => (v === 'RCPT' ? '554 5.7.1 Service unavailable; Client host [127.0.0.1] blocked using zen.spamhaus.org' : undefined) },
    'drop.test': { answer: (v) => (v === 'MAIL' ? 'close' : undefined) },
    'silent.test': { bannerDelay: Infinity },
  }
  for (const [domain, script] of Object.entries(plays)) {
    const s = await scripted(script)
    servers.push(s)
    routes[domain] = s.port
  }
  routes['down.test'] = await freePort() // nothing listens there
  for (const [domain, port] of Object.entries(routes)) moatOk(dir, ['route', 'add', domain, `127.0.0.1:${port}`])
  smtp = await startSmtp(dir, { MOAT_OUTBOUND_TIMEOUT: '5' })
})

t.teardown(async () => {
  await smtp?.stop()
  await customer?.close()
  for (const s of servers) await s.close()
})

interface AttemptRow {
  domain: string
  ip: string
  port: number
  outcome: string
  class: string
  code: number | null
  response: string
  connect_ms: number | null
  total_ms: number | null
  attempt: number
}

t.test('each kind of trouble is recorded and classified', async (t) => {
  for (const domain of Object.keys(routes)) {
    const r = await smtpSend(smtp.port, {
      from: 'alice@example.com',
      to: [`someone@${domain}`],
      data: message({ From: 'alice@example.com', To: `someone@${domain}`, Subject: `to ${domain}`, Date: new Date().toUTCString() }, 'Hello.\n'),
      localAddress: '127.0.0.5',
    })
    t.equal(r.final.code, 250, `accepted for ${domain}`)
  }
  // Poll the database, not the CLI: a blocking spawnSync here would stall the loopback servers
  // this process runs, and they would time out for real.
  const db = new Database(path.join(dir, 'moat.db'), { readonly: true })
  t.teardown(() => db.close())
  await until(
    () => {
      const domains = (db.prepare(`SELECT DISTINCT domain FROM delivery_attempts`).all() as { domain: string }[]).map((r) => r.domain)
      return Object.keys(routes).every((d) => domains.includes(d))
    },
    30_000,
    'an attempt for every domain',
  )
  const attempts = JSON.parse(moatOk(dir, ['delivery', 'attempts', '--json', '--limit', '100'])) as AttemptRow[]
  const of = (d: string) => attempts.find((a) => a.domain === d)!
  t.match(of('accept.test'), { outcome: 'delivered', class: 'ok', ip: '127.0.0.1', port: routes['accept.test'], attempt: 1 })
  t.match(of('slow.test'), { outcome: 'delivered', class: 'ok' })
  t.ok(of('slow.test').total_ms! >= 1400, `slow banner shows in the total time (${of('slow.test').total_ms} ms)`)
  t.ok(of('slow.test').connect_ms! < 1000, 'but not in the connect time: the network was fine')
  t.match(of('full.test'), { outcome: 'deferred', class: 'resources', code: 452 })
  t.match(of('grey.test'), { outcome: 'deferred', class: 'greylisted', code: 450 })
  t.match(of('rbl.test'), { outcome: 'bounced', class: 'rbl', code: 554 })
  t.match(of('rbl.test').response, /zen\.spamhaus\.org/)
  t.match(of('drop.test'), { outcome: 'failed', class: 'dropped' })
  t.match(of('silent.test'), { outcome: 'failed', class: 'timeout' })
  t.ok(of('silent.test').total_ms! >= 4900, 'waited the configured timeout')
  t.match(of('down.test'), { outcome: 'failed', class: 'refused' })

  const stats = JSON.parse(moatOk(dir, ['delivery', 'stats', '--json'])) as { ip: string; attempts: number; delivered: number; refused: number; timeouts: number; rbl: number; diagnosis: { class: string; side: string }[] }[]
  t.equal(stats.length, 1, 'one destination IP (everything is on 127.0.0.1)')
  const s = stats[0]
  t.equal(s.attempts, attempts.length)
  t.equal(s.delivered, attempts.filter((a) => a.outcome === 'delivered').length)
  t.equal(s.refused, 1)
  t.equal(s.timeouts, 1)
  t.equal(s.rbl, 1)
  const sides = Object.fromEntries(s.diagnosis.map((d) => [d.class, d.side]))
  t.same(sides, { refused: 'theirs', timeout: 'network', dropped: 'network', resources: 'theirs', greylisted: 'theirs', rbl: 'ours' })
  const table = moatOk(dir, ['delivery', 'stats', '--ip', '127.0.0.1'])
  t.match(table, /1 x OUR side: rejected because our address is on a blocklist/)
  t.match(table, /1 x network: timed out/)
})

t.test("Haraka's bounce goes to the sender's untagged address", async (t) => {
  const dsn = await until(() => customer.messages.find((m) => /blocked using zen\.spamhaus\.org/.test(m.data.toString())), 10_000, 'the DSN')
  t.same(dsn.to, ['alice@example.com'])
  t.equal(dsn.from, '')
})
