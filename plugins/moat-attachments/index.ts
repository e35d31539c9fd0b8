/*
 * moat-attachments: executables, scripts, shortcuts, disk images, macro documents and
 * double extensions, found by magic bytes and by name, also inside nested ZIP archives
 * (with limits against zip bombs); encrypted archives are a symbol of their own.
 *
 * Hooks: data_post. Config: moat-attachments.ini — [check] strip; [reject] dangerous.
 * Symbols: ATTACH_EXECUTABLE, ATTACH_DANGEROUS_EXT, ATTACH_DOUBLE_EXT, ATTACH_RISKY_EXT, ATTACH_MACRO,
 *   ATTACH_ENCRYPTED_ARCHIVE, ATTACH_ZIP_BOMB, ATTACH_ARCHIVE_TOO_DEEP (details name the files).
 * Action: each recipient organisation's attachment_action — quarantine (the default: the
 *   scorer keeps it as surespam, reason attachment), strip (notes.moat.stripped holds the copy
 *   without the dangerous parts and their Moat-Attachment-Warning.txt; the scorer delivers it
 *   and keeps the original in the quarantine), or reject (554, when every recipient
 *   organisation says so, or always with [reject] dangerous).
 * Failure: an internal error is a 451; a message whose dangerous part cannot be located for
 *   stripping is quarantined instead. Untrusted input: attachment names and contents.
 */
import { contentFilter } from '../../appliance/engine/engine'
import { STRIPPABLE } from '../../appliance/engine/filters/attachments'
import { stripDangerous } from '../../appliance/engine/strip-attachments'
import { addSymbols, constants, DSN, everyOrg, guarded, moatNotes, parsedMessage, rawMessage, recipientOrgs, type HarakaConnection, type HarakaPlugin, type Next } from '../../appliance/smtp/haraka'
import { runtime } from '../../appliance/smtp/runtime'

const filter = contentFilter('moat-attachments')

export function register(this: HarakaPlugin): void {
  this.load_config()
  this.register_hook('data_post', 'check_attachments')
}

export function load_config(this: HarakaPlugin): void {
  this.cfg = this.config.get('moat-attachments.ini', { booleans: ['-reject.dangerous', '+check.strip'] }, () => this.load_config())
}

export function check_attachments(this: HarakaPlugin, next: Next, connection: HarakaConnection): void {
  guarded(this, next, async (done) => {
    const txn = connection.transaction!
    const symbols = filter.check(await rawMessage(txn), await parsedMessage(txn), { model: runtime().model() })
    addSymbols(txn, this, symbols)
    const blocking = symbols.find((s) => STRIPPABLE.has(s.name))
    if (!blocking) return done()
    if (this.cfg.reject.dangerous || everyOrg(txn, (o) => o.attachment_action === 'reject')) {
      return done(constants.DENY, DSN.create(554, `Message refused: dangerous attachment (${blocking.detail})`, 7, 1))
    }
    if (this.cfg.check.strip && recipientOrgs(txn).some((o) => o.attachment_action === 'strip')) {
      const stripped = await stripDangerous(await rawMessage(txn))
      if (stripped) moatNotes(txn).stripped = { ...stripped, dangerous: true, ruleOrgs: [] }
      else txn.results.add(this, { msg: 'dangerous attachment not located for stripping: quarantined instead' })
    }
    done()
  })
}
