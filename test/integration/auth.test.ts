/*
 * moat-auth: SPF, DKIM and DMARC against test records served by a real DNS server (rbldnsd's
 * generic zone on loopback), with a message signed in the test (ed25519 DKIM key made here).
 */
import crypto from 'node:crypto'
import path from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import { message, moatOk, provisionAcme, smtpSend, startRbldnsd, startSink, startSmtp, workDir } from '../helpers/appliance'

const { dkimSign } = require('mailauth')

t.test('SPF pass, DMARC p=reject refusal, and an aligned DKIM signature', async (t) => {
  const dir = workDir(t)
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519')
  const rawPublic = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32).toString('base64')
  const dns = await startRbldnsd(path.join(dir, 'dns'), {
    'sender.test': ['generic', [
      '@ TXT "v=spf1 ip4:127.0.0.2 -all"',
      '_dmarc TXT "v=DMARC1; p=reject"',
      `sel._domainkey TXT "v=DKIM1; k=ed25519; p=${rawPublic}"`,
      '',
    ].join('\n')],
    'careful.test': ['generic', ['@ TXT "v=spf1 ip4:127.0.0.2 -all"', '_dmarc TXT "v=DMARC1; p=quarantine"', ''].join('\n')],
  })
  t.teardown(() => dns.proc.kill())
  const sink = await startSink()
  t.teardown(() => sink.close())
  const data = path.join(dir, 'data')
  provisionAcme(data, sink.port)
  const smtp = await startSmtp(data, { MOAT_DNS_SERVER: `127.0.0.1:${dns.port}`, MOAT_HOSTNAME: 'mx.moat.test' })

  const mail = (subject: string) =>
    message({ From: 'Bob <bob@sender.test>', To: 'alice@example.com', Subject: subject, 'Message-ID': `<${subject}@sender.test>`, Date: new Date().toUTCString() }, 'Hello Alice, the minutes from today.')
  const send = (ip: string, data: Buffer) => smtpSend(smtp.port, { from: 'bob@sender.test', to: ['alice@example.com'], localAddress: ip, data })

  const pass = await send('127.0.0.2', mail('spf-pass'))
  t.equal(pass.final.code, 250, pass.final.text)
  const delivered = (await sink.waitFor(1))[0].data.toString()
  t.match(delivered, /^Authentication-Results: mx\.moat\.test;/m, 'the result is added on delivery')
  t.match(delivered, /spf=pass/)
  t.match(delivered, /dmarc=pass/)

  const forged = await send('127.0.0.3', mail('spf-fail'))
  t.equal(forged.final.code, 550, 'SPF fails, DMARC fails, the domain says p=reject')
  t.match(forged.final.text, /5\.7\.1 Rejected by the DMARC policy of sender\.test/)

  // One copy of the message: mail() stamps the current time, and a second copy made a second later
  // would not be the message that was signed.
  const unsigned = mail('dkim-signed')
  const signed = await dkimSign(unsigned, {
    canonicalization: 'relaxed/relaxed',
    signatureData: [{ signingDomain: 'sender.test', selector: 'sel', privateKey: privateKey.export({ format: 'pem', type: 'pkcs8' }), algorithm: 'ed25519-sha256' }],
  })
  t.same(signed.errors, [])
  const signedMail = Buffer.concat([Buffer.from(signed.signatures), unsigned])
  const viaDkim = await send('127.0.0.3', signedMail)
  t.equal(viaDkim.final.code, 250, `an aligned DKIM signature passes DMARC from an address SPF does not list: ${viaDkim.final.text}`)

  const db = new Database(path.join(data, 'moat.db'), { readonly: true })
  t.teardown(() => db.close())
  const symbols = (subject: string) =>
    (JSON.parse((db.prepare(`SELECT symbols FROM messages WHERE subject = ?`).get(subject) as { symbols: string }).symbols) as { name: string }[]).map((s) => s.name)
  for (const s of ['SPF_PASS', 'DMARC_PASS']) t.ok(symbols('spf-pass').includes(s), s)
  for (const s of ['SPF_FAIL', 'DKIM_PASS', 'DMARC_PASS']) t.ok(symbols('dkim-signed').includes(s), s)

  // p=quarantine, honoured (the default): the message goes to the quarantine whatever its score.
  const careful = message({ From: 'Eve <eve@careful.test>', To: 'alice@example.com', Subject: 'careful-fail', 'Message-ID': '<cf@careful.test>', Date: new Date().toUTCString() }, 'Hello Alice, the minutes from today.')
  const q = await smtpSend(smtp.port, { from: 'eve@careful.test', to: ['alice@example.com'], localAddress: '127.0.0.3', data: careful })
  t.equal(q.final.code, 250)
  t.ok(symbols('careful-fail').includes('DMARC_FAIL_QUARANTINE'))
  const entry = db.prepare(`SELECT q.verdict FROM quarantine q JOIN messages m ON m.id = q.message_id WHERE m.subject = 'careful-fail'`).get() as { verdict: string } | undefined
  t.ok(entry && ['spam', 'surespam'].includes(entry.verdict), 'p=quarantine honoured')

  // An organisation that only scores DMARC: p=reject is no longer refused.
  moatOk(data, ['org', 'policy', 'acme', '--dmarc', 'score'])
  const scored = await send('127.0.0.3', mail('spf-fail-scored'))
  t.equal(scored.final.code, 250, scored.final.text)
  t.ok(symbols('spf-fail-scored').includes('DMARC_FAIL_REJECT'))
})
