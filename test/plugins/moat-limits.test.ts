/*
 * moat-limits and the idle timeout, on a real `moat smtp`: one address cannot hold every
 * connection slot, and a client that stalls is answered 421 and closed.
 */
import net from 'node:net'
import t from 'tap'
import { clientNetwork as clientKey } from '../../appliance/net/client-network'
import { type RunningSmtp, startSmtp, workDir } from '../helpers/appliance'

let smtp: RunningSmtp

t.before(async () => {
  smtp = await startSmtp(workDir(t), { MOAT_SMTP_IDLE_TIMEOUT: '2' })
})
t.teardown(() => smtp?.stop())

interface Client {
  socket: net.Socket
  banner: Promise<string>
  closed: Promise<number>
  text(): string
}

function connect(localAddress = '127.0.0.1'): Client {
  const socket = net.connect({ port: smtp.port, host: '127.0.0.1', localAddress })
  let text = ''
  const started = Date.now()
  const banner = new Promise<string>((resolve) => socket.once('data', (d) => resolve(d.toString())))
  socket.on('data', (d) => (text += d))
  socket.on('error', () => {})
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now() - started)))
  return { socket, banner, closed, text: () => text }
}

t.test('the 21st connection from one address is refused 421; another address and a freed slot are not', async (t) => {
  const held = Array.from({ length: 20 }, () => connect())
  const banners = await Promise.all(held.map((c) => c.banner))
  t.ok(banners.every((b) => b.startsWith('220')), '20 connections from 127.0.0.1 are served')
  const extra = connect()
  t.match(await extra.banner, /^421 4\.7\.0 Too many connections from your address/)
  await extra.closed
  const other = connect('127.0.0.2')
  t.match(await other.banner, /^220/, 'another address is served meanwhile')
  other.socket.destroy()
  held[0].socket.end('QUIT\r\n')
  await held[0].closed
  const again = connect()
  t.match(await again.banner, /^220/, 'a slot freed is a slot served')
  for (const c of [...held, again]) c.socket.destroy()
})

t.test('a stalled client is answered 421 and closed after the idle timeout', async (t) => {
  const silent = connect()
  t.match(await silent.banner, /^220/)
  const ms = await silent.closed
  t.match(silent.text(), /421 .*timeout/i)
  t.ok(ms >= 1500 && ms < 6000, `closed after ${ms} ms with MOAT_SMTP_IDLE_TIMEOUT=2`)
  // Stalled in the middle of DATA, the classic slow-loris.
  const mid = connect()
  await mid.banner
  mid.socket.write('EHLO stall.test\r\nMAIL FROM:<a@outside.test>\r\nRCPT TO:<x@example.com>\r\nDATA\r\nSubject: half\r\n')
  t.ok((await mid.closed) < 8000, 'a client stalled in DATA is closed too')
})

t.test('clientNetwork: an IPv6 client counts by its /64, IPv4 by its address', async (t) => {
  t.equal(clientKey('192.0.2.7'), '192.0.2.7')
  t.equal(clientKey('::ffff:192.0.2.7'), '192.0.2.7')
  t.equal(clientKey('2001:db8:1:2:aaaa::1'), clientKey('2001:db8:1:2:bbbb:cccc:dddd:eeee'))
  t.not(clientKey('2001:db8:1:2::1'), clientKey('2001:db8:1:3::1'))
})
