/*
 * The agent's HTTPS to its console. Consoles often run a self-signed certificate, so the
 * agent does not ask a CA: it pins the console's public key (sha256 of its SPKI, as HPKP did)
 * at enrollment and checks it on every connection before a byte of the request is sent.
 */
import crypto from 'node:crypto'
import http from 'node:http'
import tls from 'node:tls'

export function publicKeyPin(cert: tls.PeerCertificate): string {
  return `sha256/${crypto.createHash('sha256').update(cert.pubkey ?? cert.raw).digest('base64')}`
}

export class PinMismatch extends Error {}

export interface Answer {
  status: number
  body: string
  /** the console's key pin, as this connection saw it */
  pin: string
  /** response header fields, names in lower case */
  headers: Record<string, string>
}

/**
 * One HTTPS request. `pin`: refuse a console whose key differs (null only at enrollment, when
 * the agent learns the pin, or is told it with --pin).
 */
export function request(url: string, opts: { method: string; path: string; headers?: Record<string, string>; body?: string; pin: string | null; timeoutMs?: number }): Promise<Answer> {
  const u = new URL(url)
  if (u.protocol !== 'https:') return Promise.reject(new Error(`the console must be https://, not ${u.protocol}`))
  const port = Number(u.port || 443)
  const host = u.hostname.replace(/^\[|\]$/g, '')
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host, port, servername: /^[\d.:]+$/.test(host) ? undefined : host, rejectUnauthorized: false })
    const timer = setTimeout(() => socket.destroy(new Error('the console did not answer in time')), opts.timeoutMs ?? 30_000)
    socket.once('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    socket.once('secureConnect', () => {
      const pin = publicKeyPin(socket.getPeerCertificate())
      if (opts.pin && pin !== opts.pin) {
        clearTimeout(timer)
        socket.destroy()
        return reject(new PinMismatch(`the console's key is not the one pinned at enrollment (${pin})`))
      }
      const body = opts.body ?? ''
      // Plain HTTP over the TLS socket already checked: https.request would verify it again,
      // against CAs, which a pinned self-signed console does not have.
      const req = http.request(
        {
          host, port, method: opts.method, path: opts.path, createConnection: () => socket,
          headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...opts.headers },
        },
        (res) => {
          let text = ''
          res.setEncoding('utf8')
          res.on('data', (d) => (text += d))
          res.on('end', () => {
            clearTimeout(timer)
            const headers: Record<string, string> = {}
            for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') headers[k] = v
            resolve({ status: res.statusCode ?? 0, body: text, pin, headers })
          })
        },
      )
      req.on('error', (err) => {
        clearTimeout(timer)
        reject(err)
      })
      req.end(body)
    })
  })
}
