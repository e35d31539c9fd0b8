/*
 * Password guessing from outside, through a real `moat smtp` (AUTH on the submission port,
 * after STARTTLS) and a real `moat web`, from distinct loopback addresses: SMTP AUTH and the
 * web sign-in share one limiter; a stranger is slowed, the owner's own mail client and
 * browser are not locked out.
 */
import http from 'node:http'
import net from 'node:net'
import tls from 'node:tls'
import Database from 'better-sqlite3'
import path from 'node:path'
import t from 'tap'
import { moatOk, type RunningSmtp, type RunningWeb, startSmtp, startWeb, workDir } from '../helpers/appliance'

const PASSWORD = 'a long enough password'
const STRANGER = '127.0.0.2'
const OFFICE = '127.0.0.1'
let dir: string
let smtp: RunningSmtp
let web: RunningWeb

t.before(async () => {
  dir = workDir(t)
  moatOk(dir, ['org', 'add', 'acme'])
  moatOk(dir, ['domain', 'add', 'example.com', '--org', 'acme', '--deliver-to', '127.0.0.1:9'])
  for (const u of ['alice', 'bob', 'carol', 'dave']) {
    moatOk(dir, ['user', 'add', `${u}@example.com`])
    require('node:child_process').execFileSync(process.execPath, [path.join(__dirname, '../../../bin/moat'), 'user', 'password', `${u}@example.com`], {
      input: `${PASSWORD}\n`, env: { ...process.env, MOAT_DATA_DIR: dir },
    })
  }
  smtp = await startSmtp(dir)
  web = await startWeb(dir)
})
t.teardown(async () => {
  await smtp?.stop()
  await web?.stop()
})

/** One SMTP AUTH PLAIN attempt on a fresh connection: the reply code to AUTH. */
function smtpAuth(user: string, password: string, localAddress: string): Promise<number> {
  return new Promise((resolve, reject) => {
    let socket: net.Socket | tls.TLSSocket = net.connect({ port: smtp.submissionPort, host: '127.0.0.1', localAddress })
    let buf = ''
    let step = 0
    const onData = (d: Buffer) => {
      buf += d.toString()
      const m = /^(\d{3}) .*\r\n/m.exec(buf)
      if (!m) return
      buf = ''
      const code = Number(m[1])
      if (step === 0) socket.write('EHLO guess.test\r\n')
      else if (step === 1) socket.write('STARTTLS\r\n')
      else if (step === 2) {
        socket.removeListener('data', onData)
        socket = tls.connect({ socket: socket as net.Socket, rejectUnauthorized: false }, () => socket.write('EHLO guess.test\r\n'))
        socket.on('data', onData)
        socket.on('error', reject)
      } else if (step === 3) socket.write(`AUTH PLAIN ${Buffer.from(`\0${user}\0${password}`).toString('base64')}\r\n`)
      else {
        socket.end('QUIT\r\n')
        return resolve(code)
      }
      step++
    }
    socket.on('data', onData)
    socket.on('error', reject)
  })
}

interface Browser {
  cookies: Map<string, string>
}

function request(b: Browser, method: string, url: string, localAddress: string, body?: Record<string, string>): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const data = body ? new URLSearchParams(body).toString() : undefined
    const req = http.request(`${web.url}${url}`, {
      method, localAddress,
      headers: { Cookie: [...b.cookies].map(([k, v]) => `${k}=${v}`).join('; '), ...(data ? { 'Content-Type': 'application/x-www-form-urlencoded' } : {}) },
    }, (res) => {
      for (const c of res.headers['set-cookie'] ?? []) {
        const m = /^([^=]+)=([^;]*)/.exec(c)
        if (m) m[2] ? b.cookies.set(m[1], m[2]) : b.cookies.delete(m[1])
      }
      let text = ''
      res.on('data', (d) => (text += d))
      res.on('end', () => resolve({ status: res.statusCode!, text }))
    })
    req.on('error', reject)
    req.end(data)
  })
}

async function webSignIn(b: Browser, email: string, password: string, localAddress: string): Promise<number> {
  const form = await request(b, 'GET', '/login', localAddress)
  const token = /name="_login" value="([^"]+)"/.exec(form.text)![1]
  const r = await request(b, 'POST', '/login', localAddress, { _login: token, email, password, next: '/quarantine' })
  b.cookies.delete('moat_session')
  return r.status
}

t.test('SMTP AUTH guessing is slowed and counts against the web sign-in; the owner gets in', async (t) => {
  // Before the attack, alice used her mail client from the office and her browser.
  t.equal(await smtpAuth('alice@example.com', PASSWORD, OFFICE), 235)
  const alicesBrowser: Browser = { cookies: new Map() }
  t.equal(await webSignIn(alicesBrowser, 'alice@example.com', PASSWORD, OFFICE), 303)
  t.ok(alicesBrowser.cookies.get('moat_device'), 'her browser keeps a device cookie')

  // The stranger: 6 connections at a time, for 8 seconds.
  const started = Date.now()
  let tries = 0
  const worker = async () => {
    while (Date.now() - started < 8000) {
      tries++
      t.equal(await smtpAuth('alice@example.com', `guess number ${tries}`, STRANGER), 535)
    }
  }
  await Promise.all(Array.from({ length: 6 }, worker))
  const db = new Database(path.join(dir, 'moat.db'), { readonly: true })
  t.teardown(() => db.close())
  const checked = db.prepare(`SELECT count(*) FROM login_failures WHERE key = 'account:alice@example.com'`).pluck().get() as number
  t.ok(tries >= 30, `${tries} guesses sent`)
  t.ok(checked <= 10, `only ${checked} of ${tries} guesses had their password checked`)
  // The guard slows, it does not lock: once a delay runs out, the next try is checked. So the
  // stranger guesses on until one more guess is checked (and counted); a new, longer delay has
  // then just begun, and his right password is refused unchecked however the timing fell.
  const failures = () => db.prepare(`SELECT count(*) FROM login_failures WHERE key = 'account:alice@example.com'`).pluck().get() as number
  for (let n = failures(), guess = 0; failures() === n; guess++) t.equal(await smtpAuth('alice@example.com', `one more guess ${guess}`, STRANGER), 535)
  t.equal(await smtpAuth('alice@example.com', PASSWORD, STRANGER), 535, 'the right password from the stranger is refused unchecked')
  t.equal(await webSignIn({ cookies: new Map() }, 'alice@example.com', PASSWORD, STRANGER), 429, 'and the web sign-in is slowed for him too: one limiter')

  t.equal(await smtpAuth('alice@example.com', PASSWORD, OFFICE), 235, "alice's mail client in the office still authenticates")
  t.equal(await webSignIn(alicesBrowser, 'alice@example.com', PASSWORD, STRANGER), 303, 'her browser signs in even from the address the guesses came from')
  const alert = db.prepare(`SELECT message FROM alerts WHERE kind = 'password-guessing'`).pluck().get() as string
  t.match(alert, /alice@example\.com/, 'the admins are alerted')
  t.match(smtp.output(), /AUTH for alice@example\.com not checked: too many wrong passwords/, 'and it is logged')
})

t.test('a mail client opening many connections at once with the right password gets in on every one', async (t) => {
  // Checked one at a time per login and address (RelayControl.authenticate): the last of 8
  // (a mail client's connections) waits for 7 password hashes; on a busy appliance that was
  // longer than the 2 s plugin timeout moat-relay once had (answered 500).
  const codes = await Promise.all(Array.from({ length: 8 }, () => smtpAuth('dave@example.com', PASSWORD, OFFICE)))
  t.same([...new Set(codes)], [235], 'every connection: 235')
})

t.test('a guesser behind the office NAT does not block the colleagues who used it before', async (t) => {
  const NAT = '127.0.0.3'
  t.equal(await webSignIn({ cookies: new Map() }, 'bob@example.com', PASSWORD, NAT), 303, 'bob signed in from the office before')
  const guesser: Browser = { cookies: new Map() }
  let refused = 0
  for (let i = 0; i < 30; i++) if ((await webSignIn(guesser, `nobody${i}@example.com`, 'spray spray spray', NAT)) === 429) refused++
  t.ok(refused > 0, `the spray is slowed (${refused} of 30 refused unchecked)`)
  // The guesser keeps at it as each wait ends (1 s, 2 s, 4 s): the network's delay is then
  // 8 s, long enough that what follows does not depend on how fast this machine is.
  for (const wait of [1100, 2100, 4100]) {
    await new Promise((r) => setTimeout(r, wait))
    await webSignIn(guesser, 'nobody-more@example.com', 'spray spray spray', NAT)
  }
  t.equal(await webSignIn({ cookies: new Map() }, 'bob@example.com', PASSWORD, NAT), 303, 'bob gets in, with no device cookie, from the same address')
  t.equal(await webSignIn({ cookies: new Map() }, 'carol@example.com', PASSWORD, NAT), 429, 'carol, new to this network, waits a little')
  t.equal(await smtpAuth('carol@example.com', PASSWORD, OFFICE), 235, 'and is not slowed anywhere else')
})
