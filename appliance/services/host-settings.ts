/*
 * The appliance's own name and network (the setup wizard's last step, and the Status page
 * later). The web service runs as the unprivileged moat user and cannot change them: it
 * leaves a request in DATA_DIR/system/host-settings.json, a systemd path unit starts
 * `moat system apply` as root, and that checks the request again (it trusts nothing the
 * moat user wrote) before it writes /etc/hostname, /etc/hosts, the interface's ifupdown
 * stanza and /etc/resolv.conf, brings the interface up with them and restarts the services,
 * which take the new name (HELO, banner, a new self-signed certificate).
 *
 * The outcome is left in DATA_DIR/system/host-settings.result.json for the web UI to show.
 */
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { writeFileAtomic } from '../files'

export class HostSettingsError extends Error {}

export type NetworkSettings =
  | { mode: 'dhcp' }
  | { mode: 'static'; address: string; prefix: number; gateway: string; dns: string[] }

export interface HostSettings {
  hostname: string
  network: NetworkSettings
}

export interface HostSettingsResult {
  ok: boolean
  at: number
  settings: HostSettings | null
  error: string | null
}

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/

/** An RFC 1123 host name: the short name or the fully qualified one a mail gateway wants. */
export function checkHostname(name: string): string {
  const h = name.trim().toLowerCase().replace(/\.$/, '')
  if (!h || h.length > 253 || !h.split('.').every((l) => LABEL.test(l)) || /^[0-9.]+$/.test(h)) {
    throw new HostSettingsError(`"${name}" is not a valid host name (letters, digits and hyphens, dot-separated, e.g. mx1.example.com)`)
  }
  return h
}

function ipv4(value: unknown, what: string): string {
  const v = String(value ?? '').trim()
  if (!net.isIPv4(v)) throw new HostSettingsError(`${what} "${v}" is not an IPv4 address`)
  return v
}

const toInt = (ip: string) => ip.split('.').reduce((n, o) => n * 256 + Number(o), 0)

/** Checks a request as the web form or a file gives it; returns the settings in one shape. */
export function checkHostSettings(input: unknown): HostSettings {
  if (!input || typeof input !== 'object') throw new HostSettingsError('host settings must be an object')
  const o = input as Record<string, unknown>
  const hostname = checkHostname(String(o.hostname ?? ''))
  const n = (o.network ?? {}) as Record<string, unknown>
  if (n.mode === 'dhcp') return { hostname, network: { mode: 'dhcp' } }
  if (n.mode !== 'static') throw new HostSettingsError('network mode must be "dhcp" or "static"')
  // "192.0.2.10/24" as the form gives it, or address and prefix apart as a request stores them.
  const [addr, bits] = String(n.address ?? '').trim().split('/')
  const address = ipv4(addr, 'address')
  const prefix = Number(bits ?? n.prefix)
  if (!Number.isInteger(prefix) || prefix < 8 || prefix > 30) throw new HostSettingsError('give the address with its prefix length, e.g. 192.0.2.10/24')
  const gateway = ipv4(n.gateway, 'gateway')
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0
  if (((toInt(address) & mask) >>> 0) !== ((toInt(gateway) & mask) >>> 0)) throw new HostSettingsError(`gateway ${gateway} is not in ${address}/${prefix}`)
  if (address === gateway) throw new HostSettingsError('the gateway cannot be the appliance’s own address')
  const dnsList = Array.isArray(n.dns) ? n.dns : String(n.dns ?? '').split(/[\s,]+/)
  const dns = dnsList.map((d) => String(d).trim()).filter(Boolean).map((d) => ipv4(d, 'DNS server'))
  if (!dns.length || dns.length > 3) throw new HostSettingsError('give one to three DNS servers')
  return { hostname, network: { mode: 'static', address, prefix, gateway, dns } }
}

/** The settings from the setup form's fields (hostname, net_mode, address, gateway, dns). */
export function hostSettingsFromForm(body: Record<string, string>): HostSettings {
  const mode = body.net_mode || 'dhcp'
  return checkHostSettings({ hostname: body.hostname, network: mode === 'static' ? { mode, address: body.address, gateway: body.gateway, dns: body.dns } : { mode } })
}

export function renderInterface(iface: string, n: NetworkSettings): string {
  const head = `# Written by Moat (setup wizard / moat system apply); changed there, not here.\nallow-hotplug ${iface}\n`
  if (n.mode === 'dhcp') return `${head}iface ${iface} inet dhcp\n`
  return `${head}iface ${iface} inet static\n  address ${n.address}/${n.prefix}\n  gateway ${n.gateway}\n`
}

export function renderHosts(current: string, hostname: string): string {
  const short = hostname.split('.')[0]
  const names = short === hostname ? hostname : `${hostname} ${short}`
  const lines = current.split('\n').filter((l) => !/^127\.0\.1\.1\s/.test(l))
  const at = Math.max(0, lines.findIndex((l) => /^127\.0\.0\.1\s/.test(l)) + 1)
  lines.splice(at, 0, `127.0.1.1 ${names}`)
  return lines.join('\n').replace(/\n*$/, '\n')
}

export const requestFile = (dataDir: string) => path.join(dataDir, 'system', 'host-settings.json')
export const resultFile = (dataDir: string) => path.join(dataDir, 'system', 'host-settings.result.json')

/** What the web service does: leaves a checked request for the root unit to apply. */
export function requestHostSettings(dataDir: string, s: HostSettings): void {
  writeFileAtomic(requestFile(dataDir), `${JSON.stringify(s)}\n`)
}

export function lastHostSettingsResult(dataDir: string): HostSettingsResult | null {
  try {
    return JSON.parse(fs.readFileSync(resultFile(dataDir), 'utf8')) as HostSettingsResult
  } catch {
    return null
  }
}

export interface ApplyOptions {
  /** The filesystem to write in: "/" on the appliance, a test folder in tests. */
  root: string
  iface: string
  /** Runs a system command (hostname, ifdown/ifup, systemctl); skipped when null. */
  run: ((cmd: string, args: string[]) => void) | null
  log: (msg: string) => void
}

export function runCommand(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 120_000 })
  if (r.status !== 0) throw new HostSettingsError(`${cmd} ${args.join(' ')} failed: ${(r.error?.message ?? r.stderr ?? '').trim() || `exit ${r.status}`}`)
}

/** Applies settings to the system under opts.root. */
export function applyHostSettings(s: HostSettings, opts: ApplyOptions): void {
  const at = (p: string) => path.join(opts.root, p)
  const run = opts.run
  writeFileAtomic(at('etc/hostname'), `${s.hostname}\n`)
  const hosts = fs.existsSync(at('etc/hosts')) ? fs.readFileSync(at('etc/hosts'), 'utf8') : '127.0.0.1 localhost\n'
  writeFileAtomic(at('etc/hosts'), renderHosts(hosts, s.hostname))
  run?.('hostname', [s.hostname])
  opts.log(`host name is now ${s.hostname}`)
  const stanza = at(`etc/network/interfaces.d/moat-${opts.iface}`)
  const next = renderInterface(opts.iface, s.network)
  if (!fs.existsSync(stanza) || fs.readFileSync(stanza, 'utf8') !== next) {
    // ifdown needs the stanza the interface came up with (it releases a DHCP lease, or
    // removes a static address), so the new one is written after it.
    try {
      run?.('ifdown', ['--force', opts.iface])
    } catch (err) {
      opts.log(`ifdown ${opts.iface}: ${(err as Error).message} (going on)`)
    }
    writeFileAtomic(stanza, next)
    if (s.network.mode === 'static') writeFileAtomic(at('etc/resolv.conf'), `# Written by Moat\n${s.network.dns.map((d) => `nameserver ${d}`).join('\n')}\n`)
    run?.('ifup', [opts.iface])
    opts.log(s.network.mode === 'dhcp' ? `${opts.iface}: DHCP` : `${opts.iface}: ${s.network.address}/${s.network.prefix} via ${s.network.gateway}`)
  }
}

/**
 * `moat system apply` as root: applies the pending request, records the outcome, and
 * removes the request (a bad one as well, so the path unit does not loop on it).
 */
export function applyPendingHostSettings(dataDir: string, opts: ApplyOptions): HostSettingsResult | null {
  const file = requestFile(dataDir)
  if (!fs.existsSync(file)) return null
  let settings: HostSettings | null = null
  let result: HostSettingsResult
  try {
    settings = checkHostSettings(JSON.parse(fs.readFileSync(file, 'utf8')))
    applyHostSettings(settings, opts)
    result = { ok: true, at: Date.now(), settings, error: null }
  } catch (err) {
    result = { ok: false, at: Date.now(), settings, error: (err as Error).message }
    opts.log(`host settings not applied: ${result.error}`)
  }
  fs.rmSync(file, { force: true })
  writeFileAtomic(resultFile(dataDir), `${JSON.stringify(result)}\n`)
  return result
}
