/*
 * moat-dnsbl: looks the client's address up in DNS blocklists. Listings become symbols
 * (RBL_*); a client listed on a commercial list is delayed on purpose: 451 from its first
 * attempt for delay_seconds, then accepted and scored.
 *
 * Hooks: connect (start the lookups), rcpt (delay; load before moat-recipients, whose OK
 *   ends the rcpt hooks), data_post (symbols).
 * Config: moat-dnsbl.ini — [main] timeout_ms, tries, check_private, on_error, delay_seconds;
 *   [reject] delay; [zones] zone = SYMBOL, yes|no. MOAT_DNS_SERVER=host:port overrides the
 *   system resolver.
 * Symbols: one per listing zone, as configured (RBL_SPAMHAUS_ZEN, RBL_SPAMCOP).
 * Failure: a list that cannot be asked records an err and, per on_error, fails open or
 *   answers 451 — never 5xx for our own failure.
 * Untrusted input: the client's IP address (a hostile PTR never reaches a query).
 */
import { type DnsblResult, DnsblChecker, DnsblDelays, isPrivate, type Zone } from '../../appliance/services/dnsbl'
import { addSymbols, constants, DSN, guarded, type HarakaAddress, type HarakaConnection, type HarakaPlugin, type Next } from '../../appliance/smtp/haraka'
import { SenderLists } from '../../appliance/services/sender-lists'
import { runtime } from '../../appliance/smtp/runtime'

export function register(this: HarakaPlugin): void {
  this.load_config()
  if (!this.zones.length) {
    this.lognotice('moat-dnsbl: no zones configured; blocklists are off')
    return
  }
  this.register_hook('connect', 'start_lookup')
  this.register_hook('rcpt', 'delay_listed')
  this.register_hook('data_post', 'add_symbols')
}

export function load_config(this: HarakaPlugin): void {
  this.cfg = this.config.get('moat-dnsbl.ini', { booleans: ['-main.check_private', '+reject.delay'] }, () => this.load_config())
  const zones: Zone[] = []
  for (const [zone, spec] of Object.entries((this.cfg.zones ?? {}) as Record<string, string>)) {
    const [symbol, delay] = String(spec).split(',').map((s) => s.trim())
    if (!/^[A-Z0-9_]+$/.test(symbol ?? '')) {
      this.logerror(`moat-dnsbl: zone ${zone}: "${spec}" is not "SYMBOL, yes|no"; zone skipped`)
      continue
    }
    zones.push({ zone, symbol, delay: /^(yes|true|1)$/i.test(delay ?? '') })
  }
  this.zones = zones
  const m = this.cfg.main ?? {}
  this.delays = new DnsblDelays(runtime().db)
  this.lists = new SenderLists(runtime().db)
  this.checker = new DnsblChecker({
    server: runtime().settings.dnsServer,
    timeoutMs: Number(m.timeout_ms) || 1500,
    tries: Number(m.tries) || 1,
  })
}

function lookup(plugin: HarakaPlugin, connection: HarakaConnection): Promise<DnsblResult> {
  if (!connection.notes.moat_dnsbl) {
    const ip = connection.remote.ip
    connection.notes.moat_dnsbl =
      isPrivate(ip) && !plugin.cfg.main.check_private
        ? Promise.resolve({ listings: [], errors: [] })
        : (plugin.checker as DnsblChecker).check(ip, plugin.zones)
  }
  return connection.notes.moat_dnsbl
}

export function start_lookup(this: HarakaPlugin, next: Next, connection: HarakaConnection): void {
  if (connection.relaying) return next()
  // Started at connect so the answers are in by RCPT; the promise never rejects.
  void lookup(this, connection)
  next()
}

/**
 * The long-standing policy: allow-listing a sender does not lift the delay. An organisation
 * can switch that (allowlist_skips_rbl_delay); then a sender on the recipient's (or its
 * organisation's) allow list, by envelope address, is not delayed.
 */
function allowListedPastDelay(plugin: HarakaPlugin, connection: HarakaConnection, rcpt: HarakaAddress): boolean {
  const sender = connection.transaction?.mail_from?.address
  if (!sender || !rcpt?.host) return false
  const rt = runtime()
  const res = rt.recipients.resolve(rcpt.user, rcpt.host)
  if (!res.ok || !rt.tenants.orgById(res.orgId)?.allowlist_skips_rbl_delay) return false
  return (plugin.lists as SenderLists).match(res.orgId, res.userId, [sender])?.kind === 'allow'
}

export function delay_listed(this: HarakaPlugin, next: Next, connection: HarakaConnection, params: [HarakaAddress]): void {
  guarded(this, next, async (done) => {
    const r = await lookup(this, connection)
    for (const e of r.errors) connection.results.add(this, { err: `${e.zone}: ${e.code}` })
    if (r.errors.length && !r.listings.length && this.cfg.main.on_error === 'tempfail') {
      return done(constants.DENYSOFT, DSN.create(451, 'Blocklist lookup failed; please try again later', 7, 1))
    }
    const delaying = r.listings.find((l) => l.delay)
    if (!delaying || !this.cfg.reject.delay) return done()
    if (allowListedPastDelay(this, connection, params?.[0])) {
      connection.results.add(this, { skip: `delay:${delaying.zone}: allow-listed` })
      return done()
    }
    const ip = connection.remote.ip
    const now = Date.now()
    const firstSeen = (this.delays as DnsblDelays).firstSeen(ip, delaying.zone, now)
    const window = (Number(this.cfg.main.delay_seconds) || 0) * 1000
    if (now - firstSeen < window) {
      connection.results.add(this, { fail: `delayed:${delaying.zone}` })
      return done(
        constants.DENYSOFT,
        DSN.create(451, `Your address ${ip} is listed on ${delaying.zone}; delivery is delayed, please try again later`, 7, 1),
      )
    }
    done()
  })
}

export function add_symbols(this: HarakaPlugin, next: Next, connection: HarakaConnection): void {
  guarded(this, next, async (done) => {
    // A customer's server or an authenticated user (often on a dynamic, PBL-listed address).
    if (connection.relaying) return done()
    const r = await lookup(this, connection)
    addSymbols(
      connection.transaction!,
      this,
      r.listings.map((l) => ({ name: l.symbol, detail: `${l.zone} ${l.codes.join(',')}` })),
    )
    done()
  })
}
