/*
 * moat-delivery: runs the delivery outbox in the SMTP process and routes Haraka's outbound
 * queue to each domain's own mail server.
 *
 * Hooks: init_master (start outbox, recover pending deliveries), get_mx, delivered,
 *   deferred, bounce. Config: moat-delivery.ini ([main] poll_ms).
 * Failure: a domain that is not provisioned falls through to DNS MX (bounces to outside
 *   senders); a database error while recording a result is logged and never stops delivery.
 */
import { queuedDeliveryIds, recordBounced, recordDeferred, recordDelivered, startDelivery } from '../../appliance/smtp/delivery'
import { constants, type HarakaHmail, type HarakaPlugin, type Next } from '../../appliance/smtp/haraka'
import { runtime } from '../../appliance/smtp/runtime'

export function register(this: HarakaPlugin): void {
  this.cfg = this.config.get('moat-delivery.ini')
  this.register_hook('init_master', 'start_outbox')
  this.register_hook('init_child', 'start_outbox')
  this.register_hook('get_mx', 'route')
  this.register_hook('delivered', 'on_delivered')
  this.register_hook('deferred', 'on_deferred')
  this.register_hook('bounce', 'on_bounce')
}

export function start_outbox(this: HarakaPlugin, next: Next): void {
  try {
    const outbox = startDelivery({
      outbound: this.haraka_require('outbound'),
      transaction: this.haraka_require('transaction'),
      config: this.config,
      logerror: (m) => this.logerror(m),
    })
    // Deliveries whose queue file Haraka already holds were handed before a crash; only
    // the rest go again.
    const queueDir = this.haraka_require('outbound/queue').queue_dir as string
    const already = queuedDeliveryIds(queueDir)
    const pollMs = Number(this.cfg.main?.poll_ms) || 1000
    const ready = already.length ? outbox.mark(already, 'queued') : Promise.resolve()
    ready
      .then(() => {
        this.timer = setInterval(() => outbox.kick(), pollMs)
        this.timer.unref()
        outbox.kick()
      })
      .catch((err) => this.logerror(`moat-delivery: could not start the outbox: ${err}`))
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
    const d = runtime().tenants.domainByName(domain)
    if (!d) return next()
    return next(constants.OK, { exchange: d.deliver_host, port: d.deliver_port, priority: 0 })
  } catch (err) {
    this.logerror(`moat-delivery: get_mx ${domain}: ${err}`)
    return next(constants.DENYSOFT, 'temporary routing lookup failure')
  }
}

function record(plugin: HarakaPlugin, next: Next, fn: () => Promise<void>): void {
  // Recording never holds up Haraka's delivery; a failure is logged, not retried.
  fn().catch((err) => plugin.logerror(`moat-delivery: could not record a delivery result: ${err}`))
  next()
}

export function on_delivered(this: HarakaPlugin, next: Next, hmail: HarakaHmail, params: unknown[]): void {
  const response = Array.isArray(params[2]) ? params[2].join(' ') : String(params[2] ?? '')
  record(this, next, () => recordDelivered(hmail, `${params[0]} [${params[1]}]: ${response}`, (params[6] as { address: string }[]) ?? hmail.todo.rcpt_to))
}

export function on_deferred(this: HarakaPlugin, next: Next, hmail: HarakaHmail, params: { err: unknown }): void {
  record(this, next, () => recordDeferred(hmail, params?.err))
}

export function on_bounce(this: HarakaPlugin, next: Next, hmail: HarakaHmail, err: unknown): void {
  record(this, next, () => recordBounced(hmail, err))
}
