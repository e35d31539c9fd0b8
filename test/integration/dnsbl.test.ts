/*
 * moat-dnsbl against a real DNS server: Debian's rbldnsd on loopback serving a test zone,
 * clients connecting from 127.0.0.2 (every list's standard test entry) and 127.0.0.3.
 */
import fs from 'node:fs'
import path from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import { freePort, message, provisionAcme, smtpSend, startRbldnsd, startSink, startSmtp, workDir } from '../helpers/appliance'

function dnsblIni(opts: { delaySeconds: number; onError?: string }): string {
  return [
    '[main]',
    'timeout_ms=500',
    'tries=1',
    'check_private=true',
    `on_error=${opts.onError ?? 'accept'}`,
    `delay_seconds=${opts.delaySeconds}`,
    '[reject]',
    'delay=true',
    '[zones]',
    'zen.test.moat = RBL_SPAMHAUS_ZEN, yes',
    'other.test.moat = RBL_SPAMCOP, no',
    '',
  ].join('\n')
}

t.test('listed, unlisted, delayed once, and a DNS server that is down', async (t) => {
  const dir = workDir(t)
  const rbl = await startRbldnsd(path.join(dir, 'zones'), {
    'zen.test.moat': ['ip4set', ':127.0.0.2:Listed for testing, see http://example.test/$\n127.0.0.2\n'],
    'other.test.moat': ['ip4set', ':127.0.0.4:Listed\n127.0.0.2\n127.0.0.5\n'],
  })
  t.teardown(() => rbl.proc.kill())
  const sink = await startSink()
  t.teardown(() => sink.close())
  const data = path.join(dir, 'data')
  provisionAcme(data, sink.port)
  fs.mkdirSync(path.join(data, 'haraka/config'), { recursive: true })
  fs.writeFileSync(path.join(data, 'haraka/config/moat-dnsbl.ini'), dnsblIni({ delaySeconds: 2 }))
  const smtp = await startSmtp(data, { MOAT_DNS_SERVER: `127.0.0.1:${rbl.port}` })
  t.teardown(() => smtp.stop())
  const send = (from: string, subject: string) =>
    smtpSend(smtp.port, { from: 'x@outside.test', to: ['alice@example.com'], localAddress: from, data: message({ From: 'x@outside.test', Subject: subject }, 'Hello there, about the meeting.') })

  const first = await send('127.0.0.2', 'listed-1')
  t.equal(first.final.code, 451, 'a client on a commercial list is delayed')
  t.match(first.final.text, /4\.7\.1 .*127\.0\.0\.2 is listed on zen\.test\.moat/)
  const again = await send('127.0.0.2', 'listed-2')
  t.equal(again.final.code, 451, 'still inside the delay window')

  const clean = await send('127.0.0.3', 'unlisted')
  t.equal(clean.final.code, 250, 'an unlisted client (NXDOMAIN) passes')

  const other = await send('127.0.0.5', 'non-commercial')
  t.equal(other.final.code, 250, 'a list without delay only scores')

  await new Promise((r) => setTimeout(r, 2200))
  const later = await send('127.0.0.2', 'listed-3')
  t.equal(later.final.code, 250, 'after the window the listed client is accepted and scored')

  const db = new Database(path.join(data, 'moat.db'), { readonly: true })
  t.teardown(() => db.close())
  const symbols = (subject: string) =>
    (JSON.parse((db.prepare(`SELECT symbols FROM messages WHERE subject = ?`).get(subject) as { symbols: string }).symbols) as { name: string }[]).map((s) => s.name)
  t.ok(symbols('listed-3').includes('RBL_SPAMHAUS_ZEN'), 'the listing is a symbol')
  t.ok(symbols('listed-3').includes('RBL_SPAMCOP'))
  t.notOk(symbols('unlisted').some((s) => s.startsWith('RBL_')))
  t.same(symbols('non-commercial').filter((s) => s.startsWith('RBL_')), ['RBL_SPAMCOP'])
})

t.test('a DNS server that does not answer costs at most the timeout and fails open', async (t) => {
  const dir = workDir(t)
  const sink = await startSink()
  t.teardown(() => sink.close())
  provisionAcme(dir, sink.port)
  fs.mkdirSync(path.join(dir, 'haraka/config'), { recursive: true })
  fs.writeFileSync(path.join(dir, 'haraka/config/moat-dnsbl.ini'), dnsblIni({ delaySeconds: 600 }))
  // moat-auth asks the same dead server; keep its share of the wait small and known.
  fs.writeFileSync(path.join(dir, 'haraka/config/moat-auth.ini'), '[main]\ntimeout_ms=300\n[reject]\ndmarc_reject=true\n')
  // A UDP port where nothing answers: queries time out.
  const dead = await freePort()
  const blackhole = require('node:dgram').createSocket('udp4')
  await new Promise<void>((r) => blackhole.bind(dead, '127.0.0.1', r))
  t.teardown(() => blackhole.close())
  const smtp = await startSmtp(dir, { MOAT_DNS_SERVER: `127.0.0.1:${dead}` })
  t.teardown(() => smtp.stop())
  const started = Date.now()
  const r = await smtpSend(smtp.port, { from: 'x@outside.test', to: ['alice@example.com'], localAddress: '127.0.0.2', data: message({ From: 'x@outside.test', Subject: 'dns down' }, 'hi') })
  const took = Date.now() - started
  t.equal(r.final.code, 250, 'fail open: accepted')
  t.ok(took < 6000, `the dead DNS server cost ${took} ms (DNSBL: 500 ms per zone, in parallel; auth: 300 ms per lookup; unbounded would be the 30 s plugin timeout)`)
})
