/*
 * A free loopback port for a server a benchmark or test starts. The kernel may hand the
 * same ephemeral port out again right after it is closed, so a port given out once by this
 * process is not given out twice (two listeners of one service once got the same one).
 */
import net from 'node:net'

const given = new Set<number>()

export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = net.createServer()
      s.once('error', reject)
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port
        s.close(() => resolve(p))
      })
    })
    if (!given.has(port)) {
      given.add(port)
      return port
    }
  }
}
