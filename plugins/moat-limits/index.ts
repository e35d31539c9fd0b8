/*
 * moat-limits: a cap on simultaneous connections per client address, so that one host
 * cannot hold every connection slot (Haraka's own per-IP limit, in haraka-plugin-limit, needs
 * Redis; the count here lives in the one SMTP process).
 *
 * Hooks: connect (count, refuse over the cap), disconnect (release).
 * Config: moat-limits.ini ([connections] per_ip).
 * Failure: none that refuses mail: a client is only refused for its own connection count.
 * Untrusted input: the client address.
 */
import { clientNetwork } from '../../appliance/net/client-network'
import { constants, DSN, type HarakaConnection, type HarakaPlugin, type Next } from '../../appliance/smtp/haraka'

const open = new Map<string, number>()

export function register(this: HarakaPlugin): void {
  this.load_config()
  this.register_hook('connect', 'count_connection')
  this.register_hook('disconnect', 'release_connection')
}

export function load_config(this: HarakaPlugin): void {
  this.cfg = this.config.get('moat-limits.ini', () => this.load_config())
  const n = Number(this.cfg.connections?.per_ip)
  this.perIp = Number.isInteger(n) && n >= 0 ? n : 20
}

export function count_connection(this: HarakaPlugin, next: Next, connection: HarakaConnection): void {
  // A registered customer mail server (moat-relay runs first and marks it) is not capped.
  if (this.perIp === 0 || connection.notes.moat_relay?.via === 'network') return next()
  const key = clientNetwork(connection.remote.ip)
  const n = (open.get(key) ?? 0) + 1
  if (n > this.perIp) {
    connection.loginfo(this, `${key} has ${n - 1} connections open already (cap ${this.perIp})`)
    return next(constants.DENYSOFTDISCONNECT, DSN.create(421, `Too many connections from your address (at most ${this.perIp}); try again later`, 7, 0))
  }
  open.set(key, n)
  connection.notes.moat_limits_key = key
  next()
}

export function release_connection(this: HarakaPlugin, next: Next, connection: HarakaConnection): void {
  const key = connection.notes.moat_limits_key as string | undefined
  if (key) {
    connection.notes.moat_limits_key = undefined
    const n = (open.get(key) ?? 1) - 1
    if (n > 0) open.set(key, n)
    else open.delete(key)
  }
  next()
}
