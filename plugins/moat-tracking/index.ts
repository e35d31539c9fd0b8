/*
 * moat-tracking: every refusal of the SMTP dialogue goes to the tracking centre (tracking/),
 * so support can answer "where is my mail?" for mail that never got a queue id: a client
 * delayed for a blocklist, an unknown recipient, a message refused at DATA for a virus.
 *
 * Hooks: deny (Haraka runs it whenever a plugin answers 4xx or 5xx, with the stage, the
 *   plugin and its words). It always answers CONT: an OK there would overturn the refusal.
 * Config: none. Symbols: none.
 * Failure: a row that cannot be written is logged and dropped; the refusal stands.
 * Untrusted input: the addresses and HELO name, stored as given and shown escaped.
 */
import { constants, type HarakaAddress, type HarakaConnection, type HarakaPlugin, type Next } from '../../appliance/smtp/haraka'
import { runtime } from '../../appliance/smtp/runtime'
import { RefusalRecorder } from '../../appliance/tracking/record'

let recorder: RefusalRecorder | null = null

export function register(this: HarakaPlugin): void {
  this.register_hook('deny', 'record_refusal')
}

/** The code the client is answered with: the plugin's DSN when it gave one, else Haraka's default for the kind of refusal. */
function codeOf(retval: number, msg: unknown): number {
  const dsnCode = Number((msg as { code?: unknown } | null)?.code)
  if (Number.isInteger(dsnCode) && dsnCode >= 400 && dsnCode < 600) return dsnCode
  return retval === constants.DENYSOFT || retval === constants.DENYSOFTDISCONNECT ? 450 : 550
}

function reasonOf(msg: unknown): string {
  if (msg == null) return ''
  if (typeof msg === 'string') return msg
  if (Array.isArray(msg)) return msg.map(reasonOf).join(' ')
  const m = msg as { reply?: unknown; msg?: unknown }
  return String(m.reply ?? m.msg ?? msg)
}

export function record_refusal(this: HarakaPlugin, next: Next, connection: HarakaConnection, params: unknown[]): void {
  try {
    const [retval, msg, plugin, , hookParams, hook] = params as [number, unknown, string, string, unknown[] | undefined, string]
    const txn = connection.transaction
    let rcpts: string[] = []
    let mailFrom: string | null = txn?.mail_from?.address ?? null
    if (hook === 'rcpt') {
      const rcpt = (hookParams?.[0] as HarakaAddress | undefined)?.address
      if (rcpt) rcpts = [rcpt]
    } else if (hook === 'mail') {
      mailFrom = (hookParams?.[0] as HarakaAddress | undefined)?.address ?? null
    } else if (txn) {
      rcpts = txn.rcpt_to.map((r) => r.address)
    }
    recorder ??= new RefusalRecorder(runtime().db, runtime().committer, (m) => this.logerror(m))
    recorder.record({
      at: Date.now(),
      session: txn?.uuid ?? connection.uuid,
      clientIp: connection.remote.ip,
      helo: connection.hello?.host ?? null,
      mailFrom,
      rcpts,
      stage: hook,
      code: codeOf(retval, msg),
      reason: reasonOf(msg),
      plugin,
    })
  } catch (err) {
    this.logerror(`moat-tracking: ${(err as Error).stack || err}`)
  }
  next()
}
