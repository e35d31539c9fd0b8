/*
 * moat-classifier: the statistical classifier over the decoded message text.
 *
 * Hooks: data_post. Config: moat-classifier.ini ([main] enabled).
 * Symbols: one of CLASSIFIER_00, _01, _05, _20, _50, _70, _80, _85, _90, _93, _95, _98, _99,
 *   _995, _998, _999, _9999 (the spam probability's bucket), with the probability as detail.
 * Model: newest row of classifier_models (moat train / moat learn) trained on the current
 *   token scheme, else the shipped default.
 * Failure: a parse failure still classifies the raw text; an internal error is a 451.
 * Untrusted input: the whole message.
 */
import { contentFilter } from '../../appliance/engine/engine'
import { addSymbols, guarded, parsedMessage, rawMessage, type HarakaConnection, type HarakaPlugin, type Next } from '../../appliance/smtp/haraka'
import { runtime } from '../../appliance/smtp/runtime'

const filter = contentFilter('moat-classifier')

export function register(this: HarakaPlugin): void {
  this.load_config()
  if (this.cfg.main.enabled) this.register_hook('data_post', 'classify')
}

export function load_config(this: HarakaPlugin): void {
  this.cfg = this.config.get('moat-classifier.ini', { booleans: ['+main.enabled'] }, () => this.load_config())
}

export function classify(this: HarakaPlugin, next: Next, connection: HarakaConnection): void {
  guarded(this, next, async (done) => {
    const txn = connection.transaction!
    const symbols = filter.check(await rawMessage(txn), await parsedMessage(txn), { model: runtime().model() })
    addSymbols(txn, this, symbols)
    done()
  })
}
