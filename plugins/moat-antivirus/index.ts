/*
 * moat-antivirus: streams each message to clamd (INSTREAM) and records AV_<SIGNATURE>.
 *
 * Hooks: data_post. Config: moat-antivirus.ini — [main] clamd, timeout_ms, on_error;
 *   [reject] virus. MOAT_CLAMD overrides [main] clamd.
 * Action: 554 at DATA when [reject] virus is on and every recipient organisation's
 *   virus_action is reject (the default); otherwise the scorer quarantines it (reason virus),
 *   to be released by an administrator only.
 * Symbols: AV_<SIGNATURE NAME> (weighs 100 via "AV_*"), AV_UNSCANNED when accepted unscanned.
 * Failure: clamd down, slow or refusing the size is never "clean": 451 by default, or
 *   accept-and-tag. With no clamd configured the filter is off and says so at start.
 * Untrusted input: the whole message (clamd parses it; we only pass bytes).
 */
import { scanWithClamd } from '../../appliance/services/clamd'
import { addSymbols, constants, DSN, everyOrg, guarded, rawMessage, type HarakaConnection, type HarakaPlugin, type Next } from '../../appliance/smtp/haraka'
import { runtime } from '../../appliance/smtp/runtime'

export function register(this: HarakaPlugin): void {
  this.load_config()
  if (!this.clamd) {
    this.lognotice('moat-antivirus: antivirus is OFF: no clamd configured (set MOAT_CLAMD or [main] clamd in moat-antivirus.ini)')
    return
  }
  this.lognotice(`moat-antivirus: scanning with clamd at ${this.clamd}`)
  this.register_hook('data_post', 'scan')
}

export function load_config(this: HarakaPlugin): void {
  this.cfg = this.config.get('moat-antivirus.ini', { booleans: ['+reject.virus'] }, () => this.load_config())
  this.clamd = runtime().settings.clamd || this.cfg.main?.clamd || null
}

function symbolName(signature: string): string {
  return `AV_${signature.toUpperCase().replace(/[^A-Z0-9]+/g, '_').replace(/^_+|_+$/g, '')}`
}

export function scan(this: HarakaPlugin, next: Next, connection: HarakaConnection): void {
  guarded(this, next, async (done) => {
    const txn = connection.transaction!
    const r = await scanWithClamd(this.clamd, await rawMessage(txn), Number(this.cfg.main?.timeout_ms) || 30_000)
    if (r.result === 'error') {
      txn.results.add(this, { err: r.error })
      if (this.cfg.main?.on_error === 'accept') {
        addSymbols(txn, this, [{ name: 'AV_UNSCANNED', detail: r.error }])
        return done()
      }
      return done(constants.DENYSOFT, DSN.create(451, 'Virus scan not possible right now; please try again later', 3, 0))
    }
    if (r.result === 'clean') {
      txn.results.add(this, { pass: 'clean' })
      return done()
    }
    txn.results.add(this, { fail: r.name })
    addSymbols(txn, this, [{ name: symbolName(r.name), detail: r.name }])
    // Outbound (a customer's server or user relaying): not refused but held in the sender's
    // outbound quarantine through the AV_* weight, and counted against the sender, who is
    // held once over the organisation's limit; a 554 would only bounce it back unexamined.
    if (this.cfg.reject.virus && !connection.relaying && everyOrg(txn, (o) => o.virus_action === 'reject')) {
      return done(constants.DENY, DSN.create(554, `Message rejected: virus found (${r.name})`, 7, 1))
    }
    done()
  })
}
