/*
 * A small SMTP load generator: C connections, each sending messages back to back over one
 * session (MAIL, RCPT, DATA, then RSET-free reuse), recording how long each DATA phase took
 * (final dot to reply). Talks to loopback only.
 */
import net from 'node:net'
import tls from 'node:tls'

export interface LoadResult {
  sent: number
  accepted: number
  failed: number
  seconds: number
  dataLatenciesMs: number[]
}

class Session {
  private buf = ''
  private waiting: ((line: string) => void) | null = null
  constructor(private readonly socket: net.Socket) {
    socket.on('data', (d) => {
      this.buf += d.toString('latin1')
      this.drain()
    })
  }
  private drain(): void {
    for (;;) {
      const m = /^(\d{3}) .*\r?\n/m.exec(this.buf)
      if (!m || !this.waiting) return
      const end = m.index + m[0].length
      const reply = this.buf.slice(0, end)
      this.buf = this.buf.slice(end)
      const w = this.waiting
      this.waiting = null
      w(reply.split(/\r?\n/).filter(Boolean).at(-1)!)
    }
  }
  reply(): Promise<string> {
    return new Promise((resolve) => {
      this.waiting = resolve
      this.drain()
    })
  }
  end(data: string): void {
    this.socket.end(data)
  }
  async cmd(data: string | Buffer): Promise<string> {
    this.socket.write(data)
    return this.reply()
  }
}

export function stuffed(raw: Buffer): Buffer {
  const s = raw.toString('latin1').replace(/(^|\r\n)\./g, '$1..')
  return Buffer.from(s.endsWith('\r\n') ? `${s}.\r\n` : `${s}\r\n.\r\n`, 'latin1')
}

export async function runLoad(opts: {
  port: number
  messages: Buffer[]
  count: number
  concurrency: number
  from: string
  to: string
  /** submission: STARTTLS, then AUTH PLAIN as this user */
  auth?: { user: string; password: string }
  /** every Nth transaction first names a recipient the server does not know (refused, then the real one) */
  unknownEvery?: number
}): Promise<LoadResult> {
  const payloads = opts.messages.map(stuffed)
  let next = 0
  const result: LoadResult = { sent: 0, accepted: 0, failed: 0, seconds: 0, dataLatenciesMs: [] }
  const started = process.hrtime.bigint()
  const worker = async () => {
    const socket = net.connect(opts.port, '127.0.0.1')
    socket.setNoDelay(true)
    // A reset after QUIT (unread 221) is not a failure of the run.
    socket.on('error', () => {})
    let s = new Session(socket)
    await s.reply() // banner
    await s.cmd('EHLO load.test\r\n')
    if (opts.auth) {
      if (!(await s.cmd('STARTTLS\r\n')).startsWith('220')) throw new Error('STARTTLS refused')
      const secure = tls.connect({ socket, rejectUnauthorized: false }) // the appliance's self-signed certificate
      await new Promise<void>((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject))
      secure.on('error', () => {})
      s = new Session(secure)
      await s.cmd('EHLO load.test\r\n')
      const token = Buffer.from(`\0${opts.auth.user}\0${opts.auth.password}`).toString('base64')
      const r = await s.cmd(`AUTH PLAIN ${token}\r\n`)
      if (!r.startsWith('235')) throw new Error(`AUTH failed: ${r}`)
    }
    while (next < opts.count) {
      const i = next++
      result.sent++
      const mail = await s.cmd(`MAIL FROM:<${opts.from}>\r\n`)
      if (opts.unknownEvery && i % opts.unknownEvery === 0) await s.cmd(`RCPT TO:<nobody-${i}@${opts.to.split('@')[1]}>\r\n`)
      const rcpt = await s.cmd(`RCPT TO:<${opts.to}>\r\n`)
      const data = await s.cmd('DATA\r\n')
      if (!mail.startsWith('250') || !rcpt.startsWith('250') || !data.startsWith('354')) {
        result.failed++
        await s.cmd('RSET\r\n')
        continue
      }
      const t0 = process.hrtime.bigint()
      const reply = await s.cmd(payloads[i % payloads.length])
      result.dataLatenciesMs.push(Number(process.hrtime.bigint() - t0) / 1e6)
      if (reply.startsWith('250')) result.accepted++
      else result.failed++
    }
    s.end('QUIT\r\n')
  }
  await Promise.all(Array.from({ length: opts.concurrency }, worker))
  result.seconds = Number(process.hrtime.bigint() - started) / 1e9
  return result
}

export function percentile(values: number[], p: number): number {
  if (!values.length) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
}
