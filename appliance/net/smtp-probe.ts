/*
 * Asks a mail server whether it would take mail for one address, and sends nothing: EHLO,
 * MAIL FROM:<>, RCPT TO:<address>, QUIT. Used to verify a sender (services/callback.ts) and
 * the customer's recipients (smtp/recipient-callout.ts).
 *
 * Failure: anything but a clear 2xx or 5xx answer to RCPT (connection refused, timeout, 4xx,
 * a refusal before RCPT) is "unknown", never an answer. Untrusted input: the server's replies;
 * the address must be validated by the caller before it is written as an SMTP path.
 */
import net from 'node:net'

export type ProbeResult = 'valid' | 'invalid' | 'unknown'

export const SAFE_ADDRESS = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9.-]{1,253}$/

export function probeRecipient(host: string, port: number, address: string, opts: { helo: string; timeoutMs: number }): Promise<ProbeResult> {
  if (!SAFE_ADDRESS.test(address)) return Promise.resolve('unknown')
  return new Promise<ProbeResult>((resolve) => {
    const socket = net.connect({ host, port })
    const steps = [`EHLO ${opts.helo}\r\n`, 'MAIL FROM:<>\r\n', `RCPT TO:<${address}>\r\n`]
    let buf = ''
    let step = -1
    let done = false
    const finish = (r: ProbeResult) => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.end('QUIT\r\n')
      socket.destroySoon?.()
      resolve(r)
    }
    const timer = setTimeout(() => finish('unknown'), opts.timeoutMs)
    socket.on('error', () => finish('unknown'))
    socket.on('close', () => finish('unknown'))
    socket.on('data', (d) => {
      buf += d.toString('latin1')
      if (buf.length > 64 * 1024) return finish('unknown') // a server that talks without end
      let m: RegExpExecArray | null
      while ((m = /^(\d{3}) [^\n]*\n/m.exec(buf))) {
        buf = buf.slice(m.index + m[0].length)
        const code = Number(m[1])
        if (step === steps.length - 1) return finish(code >= 200 && code < 300 ? 'valid' : code >= 500 ? 'invalid' : 'unknown')
        if (code >= 400) return finish('unknown') // refused before the question was asked
        socket.write(steps[++step])
      }
    })
  })
}
