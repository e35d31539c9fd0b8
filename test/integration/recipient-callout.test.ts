/*
 * Recipient verification by callout over real SMTP: Haraka asks the customer's own server
 * (an SMTP server on loopback that knows its mailboxes) about recipients Moat has no user for,
 * accepts what it accepts, refuses what it refuses, answers 451 while it is down (and keeps
 * what it learned), and never asks about its own users or for a domain that did not opt in.
 */
import path from 'node:path'
import t from 'tap'
import { message, moatOk, provisionAcme, smtpSend, startSink, startSmtp, workDir } from '../helpers/appliance'

t.test("recipients Moat does not know are asked of the customer's server", async (t) => {
  const asked: string[] = []
  const sink = await startSink({
    reject: (rcpt) => {
      asked.push(rcpt)
      return rcpt.startsWith('nobody@') ? '5.1.1 no such mailbox' : null
    },
  })
  const dir = path.join(workDir(t), 'data')
  provisionAcme(dir, sink.port)
  const smtp = await startSmtp(dir)
  t.teardown(() => smtp.stop())
  const mail = (to: string) => message({ From: 'carol@partner.test', To: to, Subject: `for ${to}`, Date: new Date().toUTCString() }, 'Hello.')
  const send = (to: string) => smtpSend(smtp.port, { from: 'carol@partner.test', to: [to], data: mail(to) })

  t.equal((await send('bob@example.com')).final.code, 550, 'off (the default): an unknown user is refused without asking')
  t.same(asked, [], 'and the server was not asked')

  t.match(moatOk(dir, ['domain', 'verify-recipients', 'example.com', 'on']), /is on/)
  const bob = await send('bob@example.com')
  t.equal(bob.final.code, 250, `on: the server knows bob, so Moat accepts (${bob.final.text})`)
  await sink.waitFor(1)
  t.ok(sink.messages.some((m) => m.to.includes('bob@example.com')), 'and delivers to it')
  const nobody = await send('nobody@example.com')
  t.equal(nobody.final.code, 550, 'the server refuses nobody: so does Moat, at RCPT')
  t.match(nobody.final.text, /No such user here/)
  t.equal((await send('alice@example.com')).final.code, 250, 'a provisioned user')
  await sink.waitFor(2)
  t.equal(asked.filter((a) => a === 'alice@example.com').length, 1, 'is not asked at RCPT: the one RCPT her server saw is her delivery')

  await sink.close()
  const carol = await send('carol@example.com')
  t.equal(carol.final.code, 451, `the server is down: a new recipient gets 451, try later (${carol.final.text})`)
  t.equal((await send('bob@example.com')).final.code, 250, 'bob, asked a minute ago, is still accepted from the cache')
  t.equal((await send('nobody@example.com')).final.code, 550, 'and nobody still refused')
})
