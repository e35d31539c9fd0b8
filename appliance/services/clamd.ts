/*
 * A clamd client: streams a message with INSTREAM over TCP or a Unix socket.
 *
 * Failure: a connection error, a timeout, or clamd refusing the stream (over its
 * StreamMaxLength) is an error result, never "clean": the caller decides what an unscanned
 * message means.
 */
import net from 'node:net'

export type ScanResult =
  | { result: 'clean' }
  | { result: 'infected'; name: string }
  | { result: 'error'; error: string }

export function clamdTarget(address: string): net.NetConnectOpts {
  if (address.startsWith('/')) return { path: address }
  const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(address)
  if (!m) throw new Error(`clamd address "${address}" is neither host:port nor /path/to/socket`)
  return { host: m[1], port: Number(m[2]) }
}

const CHUNK = 64 * 1024

export function scanWithClamd(address: string, data: Buffer, timeoutMs: number): Promise<ScanResult> {
  return new Promise((resolve) => {
    let settled = false
    let reply = ''
    const done = (r: ScanResult) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      resolve(r)
    }
    const socket = net.connect(clamdTarget(address))
    const timer = setTimeout(() => done({ result: 'error', error: `clamd did not answer within ${timeoutMs} ms` }), timeoutMs)
    socket.on('error', (err) => done({ result: 'error', error: `clamd: ${err.message}` }))
    socket.on('data', (d) => {
      reply += d.toString('latin1')
      if (reply.includes('\0')) finish()
    })
    socket.on('end', finish)
    socket.on('connect', () => {
      socket.write('zINSTREAM\0')
      for (let at = 0; at < data.length; at += CHUNK) {
        const part = data.subarray(at, at + CHUNK)
        const len = Buffer.alloc(4)
        len.writeUInt32BE(part.length)
        socket.write(len)
        socket.write(part)
      }
      socket.write(Buffer.alloc(4)) // zero length: end of stream
    })
    function finish(): void {
      const line = reply.replace(/\0.*$/s, '').trim()
      if (!line) return done({ result: 'error', error: 'clamd closed the connection without an answer' })
      const found = /^stream: (.+) FOUND$/.exec(line)
      if (found) return done({ result: 'infected', name: found[1] })
      if (line === 'stream: OK') return done({ result: 'clean' })
      done({ result: 'error', error: `clamd: ${line}` })
    }
  })
}
