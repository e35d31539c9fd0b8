/*
 * moat-dnsbl against a real DNS server: Debian's rbldnsd on loopback serving a test zone,
 * clients connecting from 127.0.0.2 (every list's standard test entry) and 127.0.0.3.
 */
import fs from 'node:fs'
import path from 'node:path'
import Database from 'better-sqlite3'
import t, { type Test } from 'tap'
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

/** rbldnsd serving `zones`, the usual tenant, and the SMTP service asking rbldnsd with this moat-dnsbl.ini. */
async function withRbldnsd(t: Test, zones: Record<string, [string, string]>, ini: string) {
  const dir = workDir(t)
  const rbl = await startRbldnsd(path.join(dir, 'zones'), zones)
  t.teardown(() => rbl.proc.kill())
  const sink = await startSink()
  t.teardown(() => sink.close())
  const data = path.join(dir, 'data')
  provisionAcme(data, sink.port)
  fs.mkdirSync(path.join(data, 'haraka/config'), { recursive: true })
  fs.writeFileSync(path.join(data, 'haraka/config/moat-dnsbl.ini'), ini)
  const smtp = await startSmtp(data, { MOAT_DNS_SERVER: `127.0.0.1:${rbl.port}` })
  t.teardown(() => smtp.stop())
  return { data, smtp }
}

t.test('listed, unlisted, delayed once, and a DNS server that is down', async (t) => {
  const { data, smtp } = await withRbldnsd(t, {
    'zen.test.moat': ['ip4set', ':127.0.0.2:Listed for testing, see http://example.test/$\n127.0.0.2\n'],
    'other.test.moat': ['ip4set', ':127.0.0.4:Listed\n127.0.0.2\n127.0.0.5\n'],
  }, dnsblIni({ delaySeconds: 2 }))
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

/** A DNS server that answers every query with SERVFAIL, or (mode 'nxdomain') NXDOMAIN. */
async function stubDns(): Promise<{ port: number; mode: { rcode: number }; close(): void }> {
  const socket = require('node:dgram').createSocket('udp4')
  const mode = { rcode: 2 }
  socket.on('message', (q: Buffer, from: { port: number; address: string }) => {
    // Header: the query's id, QR + RD + RA, the rcode; the question copied, nothing else.
    let end = 12
    while (end < q.length && q[end] !== 0) end += q[end] + 1
    end += 5
    const head = Buffer.alloc(12)
    q.copy(head, 0, 0, 2)
    head.writeUInt16BE(0x8180 | (q.readUInt16BE(2) & 0x0100) | mode.rcode, 2)
    head.writeUInt16BE(1, 4)
    socket.send(Buffer.concat([head, q.subarray(12, end)]), from.port, from.address)
  })
  const port = await freePort()
  await new Promise<void>((r) => socket.bind(port, '127.0.0.1', r))
  return { port, mode, close: () => socket.close() }
}

t.test('return codes name the kind of listing; sender and URL domains on domain lists; tarpitting', async (t) => {
  const { data, smtp } = await withRbldnsd(t, {
    'zen.test.moat': ['ip4set', ':127.0.0.2:Listed\n127.0.0.2\n127.0.0.6 :10:Dynamic range\n'],
    'delay.test.moat': ['ip4set', ':127.0.0.2:Listed\n127.0.0.7\n'],
    'dbl.test.moat': ['dnset', ':127.0.1.2:Spam domain\nspammy.test\nevil.test :127.0.1.4:Phishing domain\n'],
  }, [
    '[main]', 'timeout_ms=500', 'check_private=true', 'on_error=accept', 'delay_seconds=600', 'tarpit_seconds=1',
    '[reject]', 'delay=true',
    '[zones]', 'zen.test.moat = RBL_SPAMHAUS_ZEN, no', 'delay.test.moat = RBL_SPAMCOP, yes',
    '[domain_zones]', 'dbl.test.moat = DBL_SPAMHAUS',
    '[codes]', 'zen.test.moat:127.0.0.2 = RBL_SPAMHAUS_SBL', 'zen.test.moat:127.0.0.10 = RBL_SPAMHAUS_PBL', 'dbl.test.moat:127.0.1.4 = DBL_SPAMHAUS_PHISH', '',
  ].join('\n'))
  const send = (ip: string, from: string, subject: string, body: string) =>
    smtpSend(smtp.port, { from, to: ['alice@example.com'], localAddress: ip, data: message({ From: from, Subject: subject }, body) })

  t.equal((await send('127.0.0.6', 'bob@mail.spammy.test', 'pbl', 'Log in at http://secure.login.evil.test/account or see https://www.example.org/help')).final.code, 250)
  t.equal((await send('127.0.0.2', 'carol@clean.test', 'sbl', 'Nothing to see at https://www.example.org/')).final.code, 250)
  t.equal((await send('127.0.0.3', 'dave@clean.test', 'clean', 'The report is at https://intranet.example.org/q3')).final.code, 250)
  const started = Date.now()
  const delayed = await send('127.0.0.7', 'eve@clean.test', 'delayed', 'hello')
  t.equal(delayed.final.code, 451, 'a listed client on a delaying list')
  t.ok(Date.now() - started >= 1000, `tarpitted: the 451 took ${Date.now() - started} ms`)

  const db = new Database(path.join(data, 'moat.db'), { readonly: true })
  t.teardown(() => db.close())
  const symbols = (subject: string) =>
    (JSON.parse((db.prepare(`SELECT symbols FROM messages WHERE subject = ?`).get(subject) as { symbols: string }).symbols) as { name: string }[])
      .map((s) => s.name).filter((n) => /^(RBL|DBL)_/.test(n)).sort()
  t.same(symbols('pbl'), ['DBL_SPAMHAUS_FROM', 'DBL_SPAMHAUS_PHISH_URL', 'RBL_SPAMHAUS_PBL'], 'the code decides the symbol; sender and URL domains are looked up by their registered domain')
  t.same(symbols('sbl'), ['RBL_SPAMHAUS_SBL'])
  t.same(symbols('clean'), [])
})

t.test('SERVFAIL: 451 with on_error=tempfail, and the list is asked again once the server answers', async (t) => {
  const dir = workDir(t)
  const dns = await stubDns()
  t.teardown(() => dns.close())
  const sink = await startSink()
  t.teardown(() => sink.close())
  provisionAcme(dir, sink.port)
  fs.mkdirSync(path.join(dir, 'haraka/config'), { recursive: true })
  fs.writeFileSync(path.join(dir, 'haraka/config/moat-dnsbl.ini'), dnsblIni({ delaySeconds: 600, onError: 'tempfail' }))
  fs.writeFileSync(path.join(dir, 'haraka/config/moat-auth.ini'), '[main]\ntimeout_ms=300\n[reject]\ndmarc_reject=true\n')
  const smtp = await startSmtp(dir, { MOAT_DNS_SERVER: `127.0.0.1:${dns.port}` })
  t.teardown(() => smtp.stop())
  const send = () => smtpSend(smtp.port, { from: 'x@outside.test', to: ['alice@example.com'], localAddress: '127.0.0.3', data: message({ From: 'x@outside.test', Subject: 'servfail' }, 'hi') })
  const failed = await send()
  t.equal(failed.final.code, 451)
  t.match(failed.final.text, /Blocklist lookup failed/)
  dns.mode.rcode = 3
  const ok = await send()
  t.equal(ok.final.code, 250, 'NXDOMAIN now: the list was asked again, not switched off')
})
