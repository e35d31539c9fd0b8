/*
 * The unit a client is counted by, for connection caps and password throttling: an IPv4
 * address, or an IPv6 client's /64 (one subscriber or host gets a whole /64, so counting
 * single IPv6 addresses would let it rotate through 2^64 of them).
 */
import net from 'node:net'

export function clientNetwork(ip: string): string {
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)
  if (v4) return v4[1]
  if (!net.isIPv6(ip)) return ip
  const [head, tail = ''] = ip.split('::')
  const a = head ? head.split(':') : []
  const b = tail ? tail.split(':') : []
  const groups = [...a, ...Array(8 - a.length - b.length).fill('0'), ...b]
  return `${groups.slice(0, 4).map((g) => parseInt(g || '0', 16).toString(16)).join(':')}::/64`
}
