/*
 * A rule that calls the sender callback: the sender domain's MX (a real SMTP server on
 * loopback, found through an MX record on a real DNS server) says whether the sender exists.
 */
import path from 'node:path'
import t from 'tap'
import { SMTPServer } from 'smtp-server'
import { freePort, message, moatOk, provisionAcme, smtpSend, startRbldnsd, startSink, startSmtp, workDir } from '../helpers/appliance'

t.test('a sender its own server does not know is caught; the answer is cached', async (t) => {
  const dir = workDir(t)
  const dns = await startRbldnsd(path.join(dir, 'zones'), { 'sender.test': ['generic', '@ MX 10 mx.sender.test\nmx A 127.0.0.1\n'] })
  t.teardown(() => dns.proc.kill())
  const dnsPort = dns.port

  // The sender domain's own mail server: knows real@, not ghost@.
  const asked: string[] = []
  const senderMx = new SMTPServer({
    authOptional: true, disabledCommands: ['STARTTLS', 'AUTH'], logger: false,
    onRcptTo(address, _s, cb) {
      asked.push(address.address)
      if (address.address === 'real@sender.test') return cb()
      const err = new Error('5.1.1 no such user') as Error & { responseCode: number }
      err.responseCode = 550
      cb(err)
    },
  })
  senderMx.on('error', () => {})
  const mxPort = await freePort()
  await new Promise<void>((r) => senderMx.listen(mxPort, '127.0.0.1', r))
  t.teardown(() => senderMx.close())

  const sink = await startSink()
  t.teardown(() => sink.close())
  const data = path.join(dir, 'data')
  provisionAcme(data, sink.port)
  moatOk(data, ['rule', 'add', 'UNKNOWN_SENDER', '--what', '{"callback":"invalid"}', '--action', 'surespam', '--description', 'the sender address does not exist at its own domain'])
  const smtp = await startSmtp(data, { MOAT_DNS_SERVER: `127.0.0.1:${dnsPort}`, MOAT_CALLBACK_PORT: String(mxPort) })
  const send = (from: string, subject: string) =>
    smtpSend(smtp.port, { from, to: ['alice@example.com'], data: message({ From: from, Subject: subject, 'Message-ID': `<${subject}@sender.test>`, Date: new Date().toUTCString() }, 'Hello Alice, the minutes from the meeting.') })

  t.equal((await send('ghost@sender.test', 'from-ghost')).final.code, 250)
  t.equal((await send('real@sender.test', 'from-real')).final.code, 250)
  t.equal((await send('ghost@sender.test', 'from-ghost-again')).final.code, 250)
  const q = JSON.parse(moatOk(data, ['quarantine', 'list', '--json']))
  t.same(q.map((e: { subject: string }) => e.subject).sort(), ['from-ghost', 'from-ghost-again'])
  t.ok(q.every((e: { symbols: { name: string }[] }) => e.symbols.some((s) => s.name === 'RULE_UNKNOWN_SENDER')))
  await sink.waitFor(1)
  t.match(sink.messages[0].data.toString(), /Subject: from-real/)
  t.same(asked, ['ghost@sender.test', 'real@sender.test'], 'each sender asked once (cached)')
})
