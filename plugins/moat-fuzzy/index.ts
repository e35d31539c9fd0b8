/*
 * moat-fuzzy: is this message a copy of a campaign already reported? Looks its fingerprints
 * (shingled text, normalised links, attachment hashes) up in the in-memory index that
 * learning/ keeps from user reports, auto-learned surespam and the fleet's shared set.
 *
 * Hooks: data_post. Config: moat-fuzzy.ini ([main] enabled).
 * Symbols: FUZZY_TEXT, FUZZY_URL, FUZZY_ATTACHMENT (confirmed: an admin or several users
 *   reported it), and each with _WEAK (one user); the detail names reporters and likeness.
 * Failure: an internal error is a 451 (guarded), like every content filter.
 * Untrusted input: the whole message; the lookup costs microseconds whatever it holds.
 */
import { contentFilter } from '../../appliance/engine/engine'
import { addSymbols, guarded, parsedMessage, rawMessage, type HarakaConnection, type HarakaPlugin, type Next } from '../../appliance/smtp/haraka'
import { runtime } from '../../appliance/smtp/runtime'

const filter = contentFilter('moat-fuzzy')

export function register(this: HarakaPlugin): void {
  this.load_config()
  if (this.cfg.main.enabled) this.register_hook('data_post', 'lookup')
}

export function load_config(this: HarakaPlugin): void {
  this.cfg = this.config.get('moat-fuzzy.ini', { booleans: ['+main.enabled'] }, () => this.load_config())
}

export function lookup(this: HarakaPlugin, next: Next, connection: HarakaConnection): void {
  guarded(this, next, async (done) => {
    const txn = connection.transaction!
    addSymbols(txn, this, filter.check(await rawMessage(txn), await parsedMessage(txn), { fingerprints: runtime().fingerprints() }))
    done()
  })
}
