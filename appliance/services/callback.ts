/*
 * Sender callback verification: asks the sender domain's mail exchanger whether the
 * envelope sender exists (MAIL FROM:<>, RCPT TO:<sender>, QUIT; nothing is sent), with a
 * cache so one address is asked once an hour, not once a message.
 *
 * Failure: anything but a clear 2xx or 5xx answer (no MX, timeout, 4xx) is "unknown", and
 * rules must treat unknown as no evidence. Untrusted input: the sender address (only ever
 * written as an SMTP path after validation) and the remote server's replies.
 */
import { promises as dns } from 'node:dns'
import net from 'node:net'
import { probeRecipient, type ProbeResult, SAFE_ADDRESS } from '../net/smtp-probe'

export type CallbackResult = ProbeResult

export interface CallbackOptions {
  dnsServer: string | null
  /** 25 in production; tests point it at their own server. */
  port: number
  timeoutMs: number
  helo: string
}

export class SenderCallback {
  private readonly cache = new Map<string, { until: number; result: CallbackResult }>()
  private readonly resolver: dns.Resolver

  constructor(private readonly opts: CallbackOptions, private readonly now: () => number = Date.now) {
    this.resolver = new dns.Resolver({ timeout: opts.timeoutMs, tries: 1 })
    if (opts.dnsServer) this.resolver.setServers([opts.dnsServer])
  }

  async verify(address: string): Promise<CallbackResult> {
    const key = address.toLowerCase()
    const hit = this.cache.get(key)
    if (hit && hit.until > this.now()) return hit.result
    const result = SAFE_ADDRESS.test(address) ? await this.ask(address) : 'unknown'
    if (this.cache.size > 50_000) this.cache.clear()
    this.cache.set(key, { until: this.now() + (result === 'unknown' ? 300_000 : 3_600_000), result })
    return result
  }

  private async exchanger(domain: string): Promise<string | null> {
    try {
      const mx = await this.resolver.resolveMx(domain)
      if (mx.length) return mx.sort((a, b) => a.priority - b.priority)[0].exchange
    } catch {
      // no MX: RFC 5321 falls back to the domain's own address
    }
    try {
      return (await this.resolver.resolve4(domain))[0] ?? null
    } catch {
      return null
    }
  }

  private async ask(address: string): Promise<CallbackResult> {
    const host = await this.exchanger(address.split('@')[1])
    if (!host) return 'unknown'
    const ip = net.isIP(host) ? host : await this.resolver.resolve4(host).then((a) => a[0], () => null)
    if (!ip) return 'unknown'
    return probeRecipient(ip, this.opts.port, address, { helo: this.opts.helo, timeoutMs: this.opts.timeoutMs })
  }
}
