/*
 * moat-attachments: executables, scripts, shortcuts, disk images, macro documents and
 * double extensions, found by magic bytes and by name, also inside nested ZIP archives
 * (with limits against zip bombs); encrypted archives are a symbol of their own.
 *
 * Hooks: data_post. Config: moat-attachments.ini — [reject] dangerous.
 * Symbols: ATTACH_EXECUTABLE, ATTACH_DANGEROUS_EXT, ATTACH_DOUBLE_EXT, ATTACH_RISKY_EXT, ATTACH_MACRO,
 *   ATTACH_ENCRYPTED_ARCHIVE, ATTACH_ZIP_BOMB, ATTACH_ARCHIVE_TOO_DEEP (details name the files).
 * Action: quarantine through the weights (surespam) by default, or 554 with [reject].
 *   Stripping the part and adding Moat-Attachment-Warning.txt is not built yet.
 * Failure: an internal error is a 451. Untrusted input: attachment names and contents.
 */
import { contentFilter } from '../../appliance/engine/engine'
import { addSymbols, constants, DSN, guarded, parsedMessage, rawMessage, type HarakaConnection, type HarakaPlugin, type Next } from '../../appliance/smtp/haraka'
import { runtime } from '../../appliance/smtp/runtime'

const filter = contentFilter('moat-attachments')
const BLOCKING = new Set(['ATTACH_EXECUTABLE', 'ATTACH_DANGEROUS_EXT', 'ATTACH_DOUBLE_EXT', 'ATTACH_ZIP_BOMB'])

export function register(this: HarakaPlugin): void {
  this.load_config()
  this.register_hook('data_post', 'check_attachments')
}

export function load_config(this: HarakaPlugin): void {
  this.cfg = this.config.get('moat-attachments.ini', { booleans: ['-reject.dangerous'] }, () => this.load_config())
}

export function check_attachments(this: HarakaPlugin, next: Next, connection: HarakaConnection): void {
  guarded(this, next, async (done) => {
    const txn = connection.transaction!
    const symbols = filter.check(await rawMessage(txn), await parsedMessage(txn), { model: runtime().model() })
    addSymbols(txn, this, symbols)
    const blocking = symbols.find((s) => BLOCKING.has(s.name))
    if (blocking && this.cfg.reject.dangerous) {
      return done(constants.DENY, DSN.create(554, `Message refused: dangerous attachment (${blocking.detail})`, 7, 1))
    }
    done()
  })
}
