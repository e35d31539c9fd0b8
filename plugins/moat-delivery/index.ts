/*
 * moat-delivery: runs the delivery outbox in the SMTP process and routes Haraka's outbound
 * queue: our domains to their customer's server, others by transport route or DNS MX.
 *
 * Hooks: init_master (reconcile the queue after a crash, then start the outbox once Haraka
 *   has loaded its queue; appliance/smtp/queue-reconcile.ts), get_mx, delivered,
 *   deferred, bounce (each attempt also recorded by the delivery monitor).
 *   Config: moat-delivery.ini ([main] poll_ms).
 * Failure: a domain without a route falls through to DNS MX; a database error while recording a result is logged and never stops delivery.
 */
import { recordBounced, recordDeferred, recordDelivered, startDelivery } from '../../appliance/smtp/delivery'
import { constants, type HarakaHmail, type HarakaPlugin, type Next } from '../../appliance/smtp/haraka'
import { runtime } from '../../appliance/smtp/runtime'
import { reconcileQueue } from '../../appliance/smtp/queue-reconcile'
const { Address } = require('@haraka/email-address')
import { Transport } from '../../appliance/services/transport'
import { type Attempt, DeliveryMonitor, smtpCode } from '../../appliance/services/delivery-monitor'

export function register(this: HarakaPlugin): void {
  this.cfg = this.config.get('moat-delivery.ini')
  this.transport = new Transport(runtime().db)
  this.monitor = new DeliveryMonitor(runtime().db, runtime().committer)
  instrumentAttempts(this)
  this.register_hook('init_master', 'start_outbox')
  this.register_hook('init_child', 'start_outbox')
  this.register_hook('get_mx', 'route')
  this.register_hook('delivered', 'on_delivered')
  this.register_hook('deferred', 'on_deferred')
  this.register_hook('bounce', 'on_bounce')
}

export function start_outbox(this: HarakaPlugin, next: Next, server?: { cfg?: { main?: { nodes?: unknown } } }): void {
  try {
    const outbox = startDelivery({
      outbound: this.haraka_require('outbound'),
      transaction: this.haraka_require('transaction'),
      config: this.config,
      logerror: (m) => this.logerror(m),
    })
    // Before Haraka loads its queue (it does so once init_master has answered): the database
    // and the queue directory agree again after a crash.
    const queueDir = this.haraka_require('outbound/queue').queue_dir as string
    const r = reconcileQueue(runtime().db, queueDir, this.haraka_require('outbound/qfile').platformDOT as string)
    if (r.handedBack || r.markedQueued || r.staleFiles.length) {
      this.lognotice(`moat-delivery: after a restart: ${r.handedBack} deliveries handed back, ${r.markedQueued} found queued, ${r.staleFiles.length} delivered queue files removed`)
    }
    const pollMs = Number(this.cfg.main?.poll_ms) || 1000
    const startPolling = () => {
      if (this.timer) return
      this.timer = setInterval(() => outbox.kick(), pollMs)
      this.timer.unref()
      outbox.kick()
    }
    // Nothing is handed to Haraka until it has loaded its queue: a file written meanwhile would
    // be both loaded and delivered by us (twice), and a temporary one deleted as left over.
    const outbound = this.haraka_require('outbound')
    if (server?.cfg?.main?.nodes || typeof outbound.init_queue !== 'function') {
      startPolling()
    } else {
      const initQueue = outbound.init_queue
      outbound.init_queue = async (...args: unknown[]) => {
        try {
          return await initQueue.apply(outbound, args)
        } finally {
          outbound.init_queue = initQueue
          startPolling()
        }
      }
    }
  } catch (err) {
    this.logerror(`moat-delivery: could not start the outbox: ${(err as Error).stack}`)
  }
  next()
}

export function shutdown(this: HarakaPlugin): void {
  if (this.timer) clearInterval(this.timer)
}

export function route(this: HarakaPlugin, next: Next, _hmail: HarakaHmail, domain: string): void {
  try {
    const r = this.transport.routeFor(domain)
    if (!r) return next()
    return next(constants.OK, { exchange: r.host, port: r.port, priority: 0 })
  } catch (err) {
    this.logerror(`moat-delivery: get_mx ${domain}: ${err}`)
    return next(constants.DENYSOFT, 'temporary routing lookup failure')
  }
}

interface AttemptTiming {
  started: number
  connectMs: number | null
  exchange: string
  host: string
  port: number
  /** what broke the session after connecting (a timeout, a reset, a close) */
  sessionError?: string
  /** this attempt is in the monitor already */
  recorded?: boolean
}

/*
 * Haraka's outbound hooks say what happened, not to which server or how long connecting took,
 * and a connection that fails or breaks mid-session only moves Haraka on to the next MX until
 * it says "Tried all MXs". Two thin wrappers add what is missing: try_deliver tells the MX it is
 * about to use which message it is for, and get_client times the connection and watches the
 * socket. Checked against Haraka 3.3's outbound (test/integration/delivery-monitor.test.ts).
 */
function instrumentAttempts(plugin: HarakaPlugin): void {
  const HMailItem = plugin.haraka_require('outbound/hmail')
  const pool = plugin.haraka_require('outbound/client_pool')
  if (HMailItem.prototype.try_deliver.moatWrapped) return
  const tryDeliver = HMailItem.prototype.try_deliver
  HMailItem.prototype.try_deliver = function (this: any, ...args: unknown[]) {
    const mx = this.mxlist?.[0]
    if (mx) mx.moat_hmail = this
    return tryDeliver.apply(this, args)
  }
  HMailItem.prototype.try_deliver.moatWrapped = true
  const getClient = pool.get_client
  pool.get_client = function (mx: any, cb: (err: unknown, socket: any) => void) {
    const hmail: TimedHmail | undefined = mx.moat_hmail
    if (hmail) recordBrokenSession(plugin, hmail)
    const timing: AttemptTiming = {
      started: Date.now(), connectMs: null, exchange: String(mx.exchange), host: String(mx.from_dns || mx.exchange), port: Number(mx.port) || 25,
    }
    if (hmail) hmail.moat_attempt = timing
    return getClient.call(pool, mx, (err: unknown, socket: any) => {
      timing.connectMs = Date.now() - timing.started
      if (err && hmail) {
        timing.recorded = true
        recordAttempt(plugin, hmail, 'failed', String(err), false)
      }
      cb(err, socket)
      // Added after Haraka's session start (which removes earlier listeners), but run before
      // its own: those move on to the next MX at once, and we must know why by then.
      socket?.prependOnceListener?.('error', (e: unknown) => (timing.sessionError ??= String(e)))
      socket?.prependOnceListener?.('close', () => (timing.sessionError ??= 'connection closed by the remote end'))
    })
  }
}

/** A session that broke after connecting is recorded when Haraka moves on from it. */
function recordBrokenSession(plugin: HarakaPlugin, hmail: TimedHmail): void {
  const t = hmail.moat_attempt
  if (!t || t.recorded || !t.sessionError) return
  t.recorded = true
  recordAttempt(plugin, hmail, 'failed', t.sessionError, false)
}

type TimedHmail = HarakaHmail & { moat_attempt?: AttemptTiming; num_failures?: number }

function recordAttempt(
  plugin: HarakaPlugin, hmail: TimedHmail, outcome: Attempt['outcome'], response: string, tls: boolean, ip?: string,
  attempt = (hmail.num_failures ?? 0) + 1,
): void {
  const t = hmail.moat_attempt
  if (t && outcome !== 'failed') t.recorded = true
  const now = Date.now()
  const a: Attempt = {
    at: now,
    queueId: hmail.todo.uuid,
    direction: hmail.todo.notes?.moat?.direction ?? 'out',
    domain: hmail.todo.domain,
    mxHost: t?.host ?? null,
    ip: ip ?? t?.exchange ?? null,
    port: t?.port ?? null,
    tls,
    outcome,
    code: smtpCode(response),
    response,
    connectMs: t?.connectMs ?? null,
    totalMs: t ? now - t.started : null,
    attempt,
    recipients: hmail.todo.rcpt_to.length,
    messageId: hmail.todo.notes?.moat?.messageId ?? null,
  }
  ;(plugin.monitor as DeliveryMonitor).record(a).catch((err) => plugin.logerror(`moat-delivery: could not record an attempt: ${err}`))
}

function record(plugin: HarakaPlugin, next: Next, fn: () => Promise<void>): void {
  // Haraka removes or renames the queue file once we answer: answering only after the result
  // is committed means a crash leaves either the file or the record, never neither (a
  // delivered message without its record would be handed again: a duplicate). A failure to
  // record is logged and does not stop delivery.
  fn()
    .catch((err) => plugin.logerror(`moat-delivery: could not record a delivery result: ${err}`))
    .finally(() => next())
}

export function on_delivered(this: HarakaPlugin, next: Next, hmail: HarakaHmail, params: unknown[]): void {
  const response = Array.isArray(params[2]) ? params[2].join(' ') : String(params[2] ?? '')
  recordAttempt(this, hmail, 'delivered', response, !!params[7], String(params[1] ?? '') || undefined)
  record(this, next, () => recordDelivered(hmail, `${params[0]} [${params[1]}]: ${response}`, (params[6] as { address: string }[]) ?? hmail.todo.rcpt_to))
}

/** The other server's own answer for a recipient it refused, when Haraka has one. */
function rcptAnswer(list: unknown): string | null {
  const r = Array.isArray(list) ? (list[0] as { dsn_smtp_code?: number; dsn_smtp_response?: string }) : null
  return r?.dsn_smtp_code ? `${r.dsn_smtp_code} ${r.dsn_smtp_response ?? ''}`.trim() : null
}

export function on_deferred(this: HarakaPlugin, next: Next, hmail: TimedHmail, params: { err: unknown; fail_recips?: unknown }): void {
  // "Tried all MXs" follows failed connections or sessions: record those, not this.
  const err = rcptAnswer(params?.fail_recips) ?? String(params?.err ?? '')
  if (/Tried all MXs/.test(err)) recordBrokenSession(this, hmail)
  if (!(hmail.moat_attempt?.recorded && /Tried all MXs/.test(err))) {
    // temp_fail has counted this failure already: the attempt number is the count.
    recordAttempt(this, hmail, 'deferred', err, false, undefined, hmail.num_failures)
  }
  hmail.moat_attempt = undefined
  record(this, next, () => recordDeferred(hmail, params?.err))
}

export function on_bounce(this: HarakaPlugin, next: Next, hmail: TimedHmail, err: unknown): void {
  // Haraka writes its bounce to the envelope sender, which for outbound mail carries our BATV
  // tag: the sender's own server knows only the untagged address.
  const from = hmail.todo.mail_from?.address
  const untagged = from ? runtime().bounceKeys.checkAddress(from) : null
  if (untagged && untagged.status !== 'none') hmail.todo.mail_from = new Address(`<${untagged.original}>`)
  const text = rcptAnswer((err as { bounced_rcpt?: unknown })?.bounced_rcpt) ?? String((err as Error)?.message ?? err)
  if (/Tried all MXs|Too many failures/.test(text)) recordBrokenSession(this, hmail)
  if (!(hmail.moat_attempt?.recorded && /Tried all MXs|Too many failures/.test(text))) recordAttempt(this, hmail, 'bounced', text, false)
  hmail.moat_attempt = undefined
  record(this, next, () => recordBounced(hmail, err))
}
