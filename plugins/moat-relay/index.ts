/*
 * moat-relay: relay control for outbound mail. Sets connection.relaying for a client that
 * is a registered customer mail server (relay networks per organisation) or a user who
 * authenticated on the submission port; checks that the envelope sender belongs to that
 * client; accepts any well-formed recipient for a relaying client and notes the sending
 * organisation, so the filters score outbound mail with that organisation's policy.
 *
 * Hooks: connect, capabilities, unrecognized_command (AUTH, from auth/auth_base), mail, rcpt.
 * Config: moat-relay.ini ([main] max_recipients).
 * Failure: a database error is a 451 (at MAIL/RCPT) or a failed AUTH (535), never a relay.
 * Passwords: checked through the guard the web sign-in shares (sign-in/password-guard.ts).
 * Untrusted input: the client address, AUTH credentials, envelope addresses.
 *
 * SECURITY: the only place connection.relaying is set. Load it first in config/plugins: its
 * rcpt OK ends the rcpt hooks for relaying clients, and every other client goes on to
 * moat-recipients, which refuses every domain that is not ours.
 */
import { constants, DSN, guarded, moatNotes, type RelayNote, type HarakaAddress, type HarakaConnection, type HarakaPlugin, type Next } from '../../appliance/smtp/haraka'
import { runtime } from '../../appliance/smtp/runtime'

const ROUTING_LOCAL_PART = /[%!@"\\\s/]/

export function register(this: HarakaPlugin): void {
  this.inherits('auth/auth_base')
  this.load_config()
  this.register_hook('connect', 'classify_client')
  this.register_hook('mail', 'check_sender')
  this.register_hook('rcpt', 'accept_outbound')
}

export function load_config(this: HarakaPlugin): void {
  this.cfg = this.config.get('moat-relay.ini', () => this.load_config())
  this.maxRecipients = Number(this.cfg.main?.max_recipients) || 500
  // auth_base waits 2^(failures-1) seconds before answering a failed AUTH, capped by this;
  // and a client's parallel AUTHs wait their turn (RelayControl.authenticate checks one at a
  // time per login and address): eight at once, each a password hash, took more than the
  // 2 s this once was, and the last ones were answered 500 "plugin timeout".
  this.timeout = (Number(this.cfg.main?.auth_fail_delay) > 0 ? Number(this.cfg.main.auth_fail_delay) : 1) + 15
  this.blankout_password = true
}

function onSubmissionPort(connection: HarakaConnection): boolean {
  return Number(connection.local?.port) === runtime().settings.submissionPort
}

export function relayNote(connection: HarakaConnection): RelayNote | null {
  return connection.relaying ? (connection.notes.moat_relay ?? null) : null
}

export function classify_client(this: HarakaPlugin, next: Next, connection: HarakaConnection): void {
  try {
    if (onSubmissionPort(connection)) return next()
    const orgId = runtime().relay.orgForClient(connection.remote.ip)
    if (orgId !== null) {
      connection.relaying = true
      connection.notes.moat_relay = { orgId, userId: null, via: 'network' } satisfies RelayNote
      connection.loginfo(this, `relay client of organisation ${orgId}`)
    }
  } catch (err) {
    // Not knowing the client means treating it as the internet: no relaying.
    connection.logerror(this, `relay network lookup failed: ${err}`)
  }
  next()
}

// Overrides auth_base: AUTH only on the submission port and only inside TLS, and only the
// mechanisms that work with hashed passwords (CRAM-MD5 needs the plain text stored).
export function hook_capabilities(this: HarakaPlugin, next: Next, connection: HarakaConnection & { tls: { enabled: boolean }; capabilities: string[] }): void {
  if (!onSubmissionPort(connection) || !connection.tls?.enabled) return next()
  connection.capabilities.push('AUTH PLAIN LOGIN')
  connection.notes.allowed_auth_methods = ['PLAIN', 'LOGIN']
  next()
}

export function check_plain_passwd(this: HarakaPlugin, connection: HarakaConnection, user: string, passwd: string, cb: (ok: boolean) => void): void {
  runtime()
    .relay.authenticate(user, passwd, connection.remote.ip)
    .then(({ user: u, retryAfterSeconds }) => {
      if (u) connection.notes.moat_relay = { orgId: u.orgId, userId: u.id, via: 'auth', login: u.email } satisfies RelayNote
      // Refused unchecked: the answer is the same 535, so a guesser learns nothing from it.
      if (retryAfterSeconds) connection.lognotice(this, `AUTH for ${user} not checked: too many wrong passwords, ${retryAfterSeconds} s to wait`)
      cb(!!u)
    })
    .catch((err) => {
      connection.logerror(this, `AUTH lookup failed: ${err}`)
      cb(false)
    })
}

export function check_sender(this: HarakaPlugin, next: Next, connection: HarakaConnection, params: [HarakaAddress]): void {
  guarded(this, next, async (done) => {
    if (onSubmissionPort(connection) && !relayNote(connection)) {
      return done(constants.DENY, DSN.create(530, 'Authentication required: use AUTH after STARTTLS on this port', 7, 0))
    }
    const note = relayNote(connection)
    if (!note) return done()
    if (!runtime().relay.senderAllowed(params[0]?.address || '', note)) {
      const who = note.via === 'auth' ? `user ${note.login}` : 'this mail server'
      return done(constants.DENY, DSN.create(550, `Sender address rejected: not owned by ${who}`, 7, 1))
    }
    done()
  })
}

export function accept_outbound(this: HarakaPlugin, next: Next, connection: HarakaConnection, params: [HarakaAddress]): void {
  guarded(this, next, async (done) => {
    const note = relayNote(connection)
    if (!note) return done()
    const rcpt = params[0]
    if (!rcpt.host) return done(constants.DENY, DSN.create(550, 'Recipient address must be fully qualified', 1, 3))
    if (ROUTING_LOCAL_PART.test(rcpt.user)) return done(constants.DENY, DSN.create(550, 'Recipient address syntax not accepted here', 1, 3))
    const notes = moatNotes(connection.transaction!)
    if (notes.rcpts.length >= this.maxRecipients) return done(constants.DENYSOFT, DSN.create(452, 'Too many recipients in this transaction', 5, 3))
    // A recipient in one of our own domains must exist: otherwise we would accept, then
    // have to bounce (backscatter of our own making).
    const local = runtime().recipients.resolve(rcpt.user, rcpt.host)
    if (!local.ok && local.reason !== 'unknown-domain') {
      return done(constants.DENY, DSN.create(550, `No such user here: ${rcpt.user}@${rcpt.host}`, 1, 1))
    }
    notes.outbound = note
    const address = `${rcpt.user}@${rcpt.host}`.toLowerCase()
    notes.rcpts.push({ address, orgId: note.orgId, domainId: local.ok ? local.domainId : 0, userId: note.userId, tagMode: false })
    done(constants.OK)
  })
}
