/*
 * Real parts for integration tests: the appliance's SMTP service as a child process on a
 * free loopback port with its own data folder, a real SMTP sink standing in for the
 * customer's mail server, the moat CLI, and a small SMTP client that sends exact bytes.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { SMTPServer } from 'smtp-server'
import { freePort } from '../../bench/ports'

export const ROOT = path.resolve(__dirname, '../../..')
const BIN = path.join(ROOT, 'bin/moat')

const runningServers: { dir: string; smtp: { stop(): Promise<void> } }[] = []

/**
 * A throw-away data folder for a test that runs the appliance. Unlike t.testdir(), whose
 * removal runs before the test's own teardowns, this one stops the servers using the folder
 * first, so nothing is still writing into it while it is removed.
 */
export function workDir(t: { teardown(fn: () => unknown): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moat-test-'))
  t.teardown(async () => {
    for (const r of runningServers.filter((x) => x.dir.startsWith(dir))) await r.smtp.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  })
  return dir
}

export { freePort }

export interface CliResult {
  code: number
  stdout: string
  stderr: string
}

export function moat(dataDir: string, args: string[], input?: string, env: Record<string, string> = {}): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    env: { ...process.env, MOAT_DATA_DIR: dataDir, ...env },
    input,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  })
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr }
}

export function moatOk(dataDir: string, args: string[]): string {
  const r = moat(dataDir, args)
  if (r.code !== 0) throw new Error(`moat ${args.join(' ')} exited ${r.code}: ${r.stderr}`)
  return r.stdout
}

/** The usual tenant of an integration test: acme, example.com delivering to `sinkPort`, alice. */
export function provisionAcme(dataDir: string, sinkPort: number): void {
  moatOk(dataDir, ['org', 'add', 'acme'])
  moatOk(dataDir, ['domain', 'add', 'example.com', '--org', 'acme', '--deliver-to', `127.0.0.1:${sinkPort}`])
  moatOk(dataDir, ['user', 'add', 'alice@example.com'])
}

/** Debian's rbldnsd on a free loopback port, serving `zones` (name -> [dataset type, text]). */
export async function startRbldnsd(dir: string, zones: Record<string, [string, string]>): Promise<{ port: number; proc: ChildProcess }> {
  // rbldnsd drops to its own user; it must be able to reach the zone files.
  for (let d = dir; d !== path.dirname(d) && d.startsWith(os.tmpdir() + path.sep); d = path.dirname(d)) {
    if (fs.existsSync(d)) fs.chmodSync(d, 0o755)
  }
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 })
  fs.chmodSync(dir, 0o755)
  const specs: string[] = []
  for (const [zone, [type, text]] of Object.entries(zones)) {
    const file = `${zone.replace(/[^a-z0-9]+/gi, '_')}.txt`
    fs.writeFileSync(path.join(dir, file), text)
    specs.push(`${zone}:${type}:${file}`)
  }
  const port = await freePort()
  const proc = spawn('rbldnsd', ['-n', '-u', 'rbldns', '-b', `127.0.0.1/${port}`, '-w', dir, ...specs], { stdio: 'ignore' })
  // rbldnsd says nothing when ready; give it a moment to load the zones.
  await new Promise((r) => setTimeout(r, 500))
  if (proc.exitCode !== null) throw new Error('rbldnsd did not start')
  return { port, proc }
}

export interface SinkMessage {
  from: string
  to: string[]
  data: Buffer
  /** when the sink answered 250 (Date.now()) */
  at: number
}

export interface Sink {
  port: number
  messages: SinkMessage[]
  waitFor(count: number, timeoutMs?: number): Promise<SinkMessage[]>
  close(): Promise<void>
}

export async function startSink(opts: { reject?: (rcpt: string) => string | null } = {}): Promise<Sink> {
  const messages: SinkMessage[] = []
  const waiters: (() => void)[] = []
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onRcptTo(address, _session, cb) {
      const why = opts.reject?.(address.address)
      if (why) {
        const err = new Error(why) as Error & { responseCode: number }
        err.responseCode = 550
        return cb(err)
      }
      cb()
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = []
      stream.on('data', (c: Buffer) => chunks.push(c))
      stream.on('end', () => {
        messages.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          data: Buffer.concat(chunks),
          at: Date.now(),
        })
        waiters.splice(0).forEach((w) => w())
        cb()
      })
    },
  })
  server.on('error', () => {}) // a client killed mid-session (the durability test) is not a sink failure
  const port = await freePort()
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  return {
    port,
    messages,
    async waitFor(count, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs
      while (messages.length < count) {
        if (Date.now() > deadline) throw new Error(`sink: wanted ${count} messages, got ${messages.length}`)
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, 200)
          waiters.push(() => {
            clearTimeout(t)
            resolve()
          })
        })
      }
      return messages
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

export interface RunningSmtp {
  port: number
  submissionPort: number
  proc: ChildProcess
  output(): string
  stop(signal?: NodeJS.Signals): Promise<void>
}

/** Starts `moat smtp` on a free port and resolves once it answers with a 220 banner. */
export async function startSmtp(dataDir: string, env: Record<string, string> = {}): Promise<RunningSmtp> {
  const port = await freePort()
  const submissionPort = await freePort()
  // No test asks real DNS: unless a test brings its own server, lookups go to a closed
  // loopback port and fail at once.
  const noDns = `127.0.0.1:${await freePort()}`
  let out = ''
  const proc = spawn(process.execPath, [BIN, 'smtp'], {
    env: { ...process.env, MOAT_DATA_DIR: dataDir, MOAT_SMTP_PORT: String(port), MOAT_SUBMISSION_PORT: String(submissionPort), MOAT_LOG_LEVEL: 'info', MOAT_DNS_SERVER: noDns, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  proc.stdout!.on('data', (d) => (out += d))
  proc.stderr!.on('data', (d) => (out += d))
  // Generous: a start after a crash first reconciles the queue, and CI machines are loaded.
  const deadline = Date.now() + 60_000
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`moat smtp exited ${proc.exitCode}:\n${out}`)
    try {
      const banner = await new Promise<string>((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1')
        s.once('data', (d) => {
          s.end('QUIT\r\n')
          resolve(d.toString())
        })
        s.once('error', reject)
      })
      if (banner.startsWith('220')) break
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL')
      throw new Error(`moat smtp did not come up:\n${out}`)
    }
    await new Promise((r) => setTimeout(r, 150))
  }
  const running: RunningSmtp = {
    port,
    submissionPort,
    proc,
    output: () => out,
    stop(signal: NodeJS.Signals = 'SIGINT') {
      return new Promise<void>((resolve) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return resolve()
        const t = setTimeout(() => proc.kill('SIGKILL'), 15_000)
        proc.once('exit', () => {
          clearTimeout(t)
          resolve()
        })
        proc.kill(signal)
      })
    },
  }
  runningServers.push({ dir: dataDir, smtp: running })
  return running
}

/** GET over HTTPS to the appliance's own self-signed certificate: did it answer 200? */
function httpsOk(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    require('node:https')
      .get(url, { rejectUnauthorized: false }, (res: import('node:http').IncomingMessage) => {
        res.resume()
        resolve(res.statusCode === 200)
      })
      .on('error', () => resolve(false))
  })
}

export interface RunningWeb {
  port: number
  url: string
  output(): string
  stop(): Promise<void>
}

/** Starts `moat web` (web UI and jobs) on a free loopback port; resolves once /healthz answers. */
export async function startWeb(dataDir: string, env: Record<string, string> = {}): Promise<RunningWeb> {
  const port = env.MOAT_WEB_PORT ? Number(env.MOAT_WEB_PORT) : await freePort()
  let out = ''
  const proc = spawn(process.execPath, [BIN, 'web'], {
    env: { ...process.env, MOAT_DATA_DIR: dataDir, MOAT_WEB_PORT: String(port), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  proc.stdout!.on('data', (d) => (out += d))
  proc.stderr!.on('data', (d) => (out += d))
  const tls = env.MOAT_WEB_TLS === '1'
  const url = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`
  const deadline = Date.now() + 30_000
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`moat web exited ${proc.exitCode}:\n${out}`)
    const ok = tls ? await httpsOk(`${url}/healthz`) : await fetch(`${url}/healthz`).then((r) => r.ok, () => false)
    if (ok) break
    if (Date.now() > deadline) {
      proc.kill('SIGKILL')
      throw new Error(`moat web did not come up:\n${out}`)
    }
    await new Promise((r) => setTimeout(r, 150))
  }
  const running: RunningWeb = {
    port,
    url,
    output: () => out,
    stop: () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return resolve()
        proc.once('exit', () => resolve())
        proc.kill('SIGKILL')
      }),
  }
  runningServers.push({ dir: dataDir, smtp: running })
  return running
}

export interface Reply {
  code: number
  text: string
}

export interface SendResult {
  replies: Reply[]
  /** The reply to the end of DATA, or to the last command that failed. */
  final: Reply
}

/**
 * A deliberately plain SMTP client: sends `data` exactly as given (after dot-stuffing),
 * so tests can send bytes a polite client library would repair.
 */
export async function smtpSend(
  port: number,
  msg: { from: string; to: string[]; data: Buffer | string; helo?: string; localAddress?: string },
): Promise<SendResult> {
  const data = Buffer.isBuffer(msg.data) ? msg.data : Buffer.from(msg.data)
  const socket = net.connect({ port, host: '127.0.0.1', localAddress: msg.localAddress })
  let buf = ''
  const pending: ((r: Reply) => void)[] = []
  const queued: Reply[] = []
  socket.on('data', (d) => {
    buf += d.toString('latin1')
    for (;;) {
      const m = /^(\d{3})([ -])(.*)\r?\n/m.exec(buf)
      if (!m) break
      // collect a whole (possibly multi-line) reply
      const lines: string[] = []
      let rest = buf
      let code = 0
      let done = false
      while (!done) {
        const lm = /^(\d{3})([ -])(.*?)\r?\n/.exec(rest)
        if (!lm) break
        lines.push(lm[3])
        code = Number(lm[1])
        rest = rest.slice(lm[0].length)
        if (lm[2] === ' ') done = true
      }
      if (!done) break
      buf = rest
      const reply = { code, text: lines.join('\n') }
      const w = pending.shift()
      if (w) w(reply)
      else queued.push(reply)
    }
  })
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  socket.on('error', () => {})
  const next = () =>
    new Promise<Reply>((resolve, reject) => {
      const q = queued.shift()
      if (q) return resolve(q)
      const t = setTimeout(() => reject(new Error('SMTP reply timed out')), 60_000)
      t.unref()
      pending.push((r) => {
        clearTimeout(t)
        resolve(r)
      })
      closed.then(() => {
        clearTimeout(t)
        reject(new Error(`connection closed; received so far: ${buf}`))
      })
    })
  const replies: Reply[] = []
  const cmd = async (line: string | Buffer) => {
    if (line) socket.write(line)
    const r = await next()
    replies.push(r)
    return r
  }
  try {
    let r = await cmd('')
    if (r.code !== 220) return { replies, final: r }
    r = await cmd(`EHLO ${msg.helo ?? 'client.test'}\r\n`)
    r = await cmd(`MAIL FROM:<${msg.from}>\r\n`)
    if (r.code >= 400) return { replies, final: r }
    let accepted = 0
    let last = r
    for (const to of msg.to) {
      last = await cmd(`RCPT TO:<${to}>\r\n`)
      if (last.code < 400) accepted++
    }
    if (!accepted) return { replies, final: last }
    r = await cmd('DATA\r\n')
    if (r.code !== 354) return { replies, final: r }
    const stuffed = Buffer.from(data.toString('latin1').replace(/(^|\r\n)\./g, '$1..'), 'latin1')
    const ending = stuffed.subarray(-2).toString() === '\r\n' ? '.\r\n' : '\r\n.\r\n'
    r = await cmd(Buffer.concat([stuffed, Buffer.from(ending)]))
    socket.write('QUIT\r\n')
    return { replies, final: r }
  } finally {
    socket.end()
    socket.destroySoon?.()
  }
}

export function message(headers: Record<string, string>, body: string): Buffer {
  const head = Object.entries(headers).map(([k, v]) => `${k}: ${v}`)
  return Buffer.from(`${head.join('\r\n')}\r\n\r\n${body.replace(/\r?\n/g, '\r\n')}\r\n`, 'utf8')
}

export async function until<T>(fn: () => T | undefined | null | false, timeoutMs = 20_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = fn()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}
