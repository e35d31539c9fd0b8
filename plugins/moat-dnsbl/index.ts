/*
 * moat-dnsbl: looks the client's address up in DNS blocklists, and the sender's domain and
 * the domains of the body's URLs up in domain blocklists. Listings become symbols; a client
 * listed on a commercial IP list is delayed on purpose: 451 from its first attempt for
 * delay_seconds (optionally tarpitted too), then accepted and scored.
 *
 * Hooks: connect (start the IP lookups), rcpt (delay; load before moat-recipients, whose OK
 *   ends the rcpt hooks), data_post (domain lookups, symbols).
 * Config: moat-dnsbl.ini — [main] timeout_ms, tries, check_private, on_error, delay_seconds,
 *   tarpit_seconds, max_domains; [reject] delay; [zones] zone = SYMBOL, yes|no;
 *   [domain_zones] zone = SYMBOL; [codes] zone:127.0.0.x = SYMBOL. MOAT_DNS_SERVER=host:port
 *   overrides the system resolver.
 * Symbols: per IP zone (RBL_SPAMHAUS_ZEN, RBL_SPAMCOP) or per return code where [codes] maps
 *   it (RBL_SPAMHAUS_SBL, _XBL, _PBL…); per domain zone SYMBOL_FROM (envelope or From domain)
 *   and SYMBOL_URL (a URL's domain), with the code's symbol in place of SYMBOL where mapped.
 * Failure: a list that cannot be asked records an err and, per on_error, fails open or
 *   answers 451 — never 5xx for our own failure.
 * Untrusted input: the client's IP address (a hostile PTR never reaches a query).
 */
import { type DnsblResult, DnsblChecker, DnsblDelays, isPrivate, registeredDomain, type Zone } from '../../appliance/services/dnsbl'
import type { Symbol } from '../../appliance/engine/symbols'
import { addSymbols, constants, DSN, guarded, parsedMessage, type HarakaAddress, type HarakaConnection, type HarakaPlugin, type Next } from '../../appliance/smtp/haraka'
import { SenderLists } from '../../appliance/services/sender-lists'
import { runtime } from '../../appliance/smtp/runtime'

export function register(this: HarakaPlugin): void {
  this.load_config()
  if (!this.zones.length && !this.domainZones.length) {
    this.lognotice('moat-dnsbl: no zones configured; blocklists are off')
    return
  }
  this.register_hook('connect', 'start_lookup')
  this.register_hook('rcpt', 'delay_listed')
  this.register_hook('data_post', 'add_symbols')
}

export function load_config(this: HarakaPlugin): void {
  this.cfg = this.config.get('moat-dnsbl.ini', { booleans: ['-main.check_private', '+reject.delay'] }, () => this.load_config())
  // [codes] "zone:127.0.0.x = SYMBOL": what each return code of a list stands for.
  const codes = new Map<string, Record<string, string>>()
  for (const [key, symbol] of Object.entries((this.cfg.codes ?? {}) as Record<string, string>)) {
    const m = /^(.+):(127\.\d{1,3}\.\d{1,3}\.\d{1,3})$/.exec(key)
    if (!m || !/^[A-Z0-9_]+$/.test(String(symbol).trim())) {
      this.logerror(`moat-dnsbl: [codes] ${key} = ${symbol} is not "zone:127.0.0.x = SYMBOL"; skipped`)
      continue
    }
    codes.set(m[1], { ...codes.get(m[1]), [m[2]]: String(symbol).trim() })
  }
  const zonesOf = (section: string, withDelay: boolean): Zone[] => {
    const zones: Zone[] = []
    for (const [zone, spec] of Object.entries((this.cfg[section] ?? {}) as Record<string, string>)) {
      const [symbol, delay] = String(spec).split(',').map((s) => s.trim())
      if (!/^[A-Z0-9_]+$/.test(symbol ?? '')) {
        this.logerror(`moat-dnsbl: [${section}] ${zone}: "${spec}" is not "SYMBOL${withDelay ? ', yes|no' : ''}"; zone skipped`)
        continue
      }
      zones.push({ zone, symbol, delay: withDelay && /^(yes|true|1)$/i.test(delay ?? ''), codes: codes.get(zone) })
    }
    return zones
  }
  this.zones = zonesOf('zones', true)
  this.domainZones = zonesOf('domain_zones', false)
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
  if (!plugin.zones.length) return Promise.resolve({ listings: [], errors: [] })
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
      // Tarpitting: the 451 comes slowly, which costs a spamming engine more than a real MTA.
      const tarpit = Math.min(25, Number(this.cfg.main.tarpit_seconds) || 0) * 1000 // below the plugin timeout (30 s)
      if (tarpit) await new Promise((r) => setTimeout(r, tarpit))
      return done(
        constants.DENYSOFT,
        DSN.create(451, `Your address ${ip} is listed on ${delaying.zone}; delivery is delayed, please try again later`, 7, 1),
      )
    }
    done()
  })
}

/** The sender's domains and the body's URL domains, as domain lists are asked about them. */
async function domainsToCheck(connection: HarakaConnection, max: number): Promise<{ from: Set<string>; urls: Set<string> }> {
  const txn = connection.transaction!
  const msg = await parsedMessage(txn)
  const from = new Set<string>()
  for (const a of [txn.mail_from.address || '', msg.from?.address ?? '']) {
    const d = registeredDomain(a.slice(a.lastIndexOf('@') + 1))
    if (a.includes('@') && d) from.add(d)
  }
  const urls = new Set<string>()
  for (const u of [...msg.urls, ...msg.links.map((l) => l.href)]) {
    if (urls.size >= max) break
    const host = /^[a-z][a-z0-9+.-]*:\/\/(?:[^@/?#]*@)?([^/?#:]+)/i.exec(u)?.[1]
    const d = host ? registeredDomain(host) : null
    if (d) urls.add(d)
  }
  return { from, urls }
}

export function add_symbols(this: HarakaPlugin, next: Next, connection: HarakaConnection): void {
  guarded(this, next, async (done) => {
    // A customer's server or an authenticated user (often on a dynamic, PBL-listed address).
    if (connection.relaying) return done()
    // As for addresses: mail from loopback and private networks is not looked up (but in tests).
    const local = isPrivate(connection.remote.ip) && !this.cfg.main.check_private
    const [r, d] = await Promise.all([
      lookup(this, connection),
      this.domainZones.length && !local ? domainsToCheck(connection, Number(this.cfg.main.max_domains) || 20) : null,
    ])
    const symbols: Symbol[] = r.listings.flatMap((l) => l.symbols.map((name) => ({ name, detail: `${l.zone} ${l.answers.join(',')}` })))
    if (d && (d.from.size || d.urls.size)) {
      const res = await (this.checker as DnsblChecker).checkDomains([...new Set([...d.from, ...d.urls])], this.domainZones)
      for (const e of res.errors) connection.results.add(this, { err: `${e.zone}: ${e.code}` })
      for (const l of res.listings) {
        for (const base of l.symbols) {
          if (d.from.has(l.domain!)) symbols.push({ name: `${base}_FROM`, detail: `${l.domain} on ${l.zone} ${l.answers.join(',')}` })
          if (d.urls.has(l.domain!)) symbols.push({ name: `${base}_URL`, detail: `${l.domain} on ${l.zone} ${l.answers.join(',')}` })
        }
      }
    }
    addSymbols(connection.transaction!, this, symbols)
    done()
  })
}
