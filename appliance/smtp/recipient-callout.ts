/*
 * Recipient verification by callout, as Proxmox Mail Gateway's "receiver verification": for a
 * domain that asks for it, a recipient Moat has no user or alias for is asked of the
 * customer's own server (the domain's delivery host) before RCPT is answered, so mail the
 * server would refuse is refused at our door instead of bounced later (backscatter).
 *
 * Answers are cached per address in the SMTP process: accepted for CACHE_VALID_MS, refused for
 * CACHE_INVALID_MS (a new mailbox is found within minutes); "unknown" (server down, 4xx,
 * timeout) is not cached and answered 451, so senders retry and nothing is lost or bounced.
 */
import { probeRecipient, type ProbeResult } from '../net/smtp-probe'

export const CACHE_VALID_MS = 2 * 3_600_000
export const CACHE_INVALID_MS = 10 * 60_000
const CACHE_MAX = 100_000

export class RecipientCallout {
  private readonly cache = new Map<string, { until: number; result: ProbeResult }>()

  constructor(private readonly opts: { helo: string; timeoutMs: number }, private readonly now: () => number = Date.now) {}

  async check(address: string, host: string, port: number): Promise<ProbeResult> {
    const key = `${host}:${port}/${address.toLowerCase()}`
    const hit = this.cache.get(key)
    if (hit && hit.until > this.now()) return hit.result
    const result = await probeRecipient(host, port, address, this.opts)
    if (result !== 'unknown') {
      if (this.cache.size >= CACHE_MAX) this.cache.clear()
      this.cache.set(key, { until: this.now() + (result === 'valid' ? CACHE_VALID_MS : CACHE_INVALID_MS), result })
    }
    return result
  }
}
