/*
 * moat-auth: sender authentication — SPF, DKIM, DMARC and ARC through mailauth (a
 * maintained implementation; these RFCs are easy to get subtly wrong by hand).
 *
 * Hooks: data_post. Config: moat-auth.ini — [main] timeout_ms; [reject] dmarc_reject.
 * Symbols: SPF_<PASS|FAIL|SOFTFAIL|NEUTRAL|NONE|TEMPERROR|PERMERROR>, DKIM_<PASS|FAIL|NONE|...>,
 *   DMARC_<PASS|NONE|FAIL|FAIL_QUARANTINE|FAIL_REJECT>, ARC_<PASS|FAIL> (when a chain exists).
 * Writes: transaction.notes.moat_auth_results, the Authentication-Results header added to
 *   the message on delivery (the archive keeps the bytes as received).
 * Action: a DMARC failure under p=reject is refused with 550 when [reject] dmarc_reject is on
 *   and every recipient organisation honours DMARC (dmarc_action, the default); the scorer
 *   quarantines failures under p=quarantine (and p=reject not refused) for those that honour
 *   it; an organisation with dmarc_action=score only scores them.
 * Failure: DNS errors become temperror results, never a refusal of ours; an internal error is 451.
 * Untrusted input: the message, its signatures, and everything DNS returns for them.
 */
import { promises as dns } from 'node:dns'
import { addSymbols, constants, DSN, everyOrg, guarded, rawMessage, type HarakaConnection, type HarakaPlugin, type Next } from '../../appliance/smtp/haraka'
import { runtime } from '../../appliance/smtp/runtime'
import type { Symbol } from '../../appliance/engine/symbols'

const { authenticate } = require('mailauth')

export function register(this: HarakaPlugin): void {
  this.load_config()
  this.register_hook('data_post', 'check_auth')
}

export function load_config(this: HarakaPlugin): void {
  this.cfg = this.config.get('moat-auth.ini', { booleans: ['+reject.dmarc_reject'] }, () => this.load_config())
  const resolver = new dns.Resolver({ timeout: Number(this.cfg.main?.timeout_ms) || 3000, tries: 1 })
  const server = runtime().settings.dnsServer
  if (server) resolver.setServers([server])
  this.resolve = (name: string, rrtype: string) => resolver.resolve(name, rrtype as 'TXT')
}

const tag = (prefix: string, result: string | undefined) => `${prefix}_${String(result || 'none').toUpperCase().replace(/[^A-Z]/g, '')}`

export function authSymbols(res: any): Symbol[] {
  const out: Symbol[] = []
  out.push({ name: tag('SPF', res.spf?.status?.result), detail: res.spf?.status?.comment })
  const dkim = (res.dkim?.results ?? []) as { status: { result: string; comment?: string }; signingDomain?: string }[]
  const best = dkim.find((d) => d.status.result === 'pass') ?? dkim[0]
  out.push({ name: tag('DKIM', best?.status.result), detail: best ? `${best.signingDomain ?? ''} ${best.status.comment ?? ''}`.trim() : undefined })
  const dmarc = res.dmarc
  const dr = dmarc?.status?.result
  if (dr === 'fail' && (dmarc.policy === 'reject' || dmarc.policy === 'quarantine')) {
    out.push({ name: `DMARC_FAIL_${String(dmarc.policy).toUpperCase()}`, detail: dmarc.domain })
  } else {
    out.push({ name: tag('DMARC', dr), detail: dmarc?.domain })
  }
  const arc = res.arc?.status?.result
  if (arc && arc !== 'none') out.push({ name: tag('ARC', arc) })
  return out
}

export function check_auth(this: HarakaPlugin, next: Next, connection: HarakaConnection): void {
  guarded(this, next, async (done) => {
    const txn = connection.transaction!
    // Our own customers' outbound mail: SPF/DMARC of the sender's domain say nothing about it.
    if (connection.relaying) return done()
    const res = await authenticate(await rawMessage(txn), {
      ip: connection.remote.ip,
      helo: connection.hello.host || '',
      mta: runtime().settings.hostname,
      sender: txn.mail_from.address || '',
      resolver: this.resolve,
      disableBimi: true,
    })
    const symbols = authSymbols(res)
    addSymbols(txn, this, symbols)
    const ar = /^Authentication-Results:\s*([\s\S]*?)\r?\n(?![ \t])/m.exec(res.headers ?? '')
    // Folded lines stay folded; any other line break (from hostile DNS text) becomes a space.
    if (ar) txn.notes.moat_auth_results = ar[1].replace(/\r?\n(?=[ \t])/g, '\n').replace(/[\r\n](?![ \t])/g, ' ').replace(/\n/g, '\r\n')
    if (this.cfg.reject.dmarc_reject && symbols.some((s) => s.name === 'DMARC_FAIL_REJECT') && everyOrg(txn, (o) => o.dmarc_action === 'honour')) {
      return done(constants.DENY, DSN.create(550, `Rejected by the DMARC policy of ${res.dmarc?.domain} (p=reject)`, 7, 1))
    }
    done()
  })
}
