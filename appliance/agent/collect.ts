/*
 * What an agent reports, read with systeminformation (one library for Linux and Windows).
 * Inventory: the machine and its software, daily and at start. Metrics: a minute's worth of
 * load. Only what the console shows and alerts on is kept, so a report stays small.
 */
import { execFile } from 'node:child_process'
import fsp from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { Worker } from 'node:worker_threads'
import si from 'systeminformation'

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve) => execFile(cmd, args, { maxBuffer: 16 * 1024 * 1024, timeout: 30_000 }, (err, out) => resolve(err ? '' : out)))
}

/** Installed packages: dpkg on Debian, the registry's uninstall keys on Windows. */
async function installedSoftware(): Promise<{ name: string; version: string }[]> {
  if (process.platform === 'win32') return parseWindowsSoftware(await powershell(WINDOWS_SOFTWARE_SCRIPT))
  if (process.platform !== 'linux') return []
  // Once more on failure: under a load spike the first try can time out, and an empty list
  // would tell the console the machine has no software at all until tomorrow's inventory.
  const query = () => run('dpkg-query', ['-W', '-f=${Package}\t${Version}\n'])
  const out = (await query()) || (await query())
  return out.split('\n').filter(Boolean).map((l) => {
    const [name, version] = l.split('\t')
    return { name, version }
  })
}

function powershell(script: string): Promise<string> {
  return run('powershell.exe', ['-NoProfile', '-NonInteractive', '-Command', script])
}

/** Both registry views (64- and 32-bit programs), as Windows' "Apps & features" lists them. */
export const WINDOWS_SOFTWARE_SCRIPT =
  "Get-ItemProperty 'HKLM:\\Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\*','HKLM:\\Software\\WOW6432Node\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\*' -ErrorAction SilentlyContinue | " +
  'Where-Object { $_.DisplayName -and -not $_.SystemComponent } | Select-Object DisplayName, DisplayVersion, Publisher | ConvertTo-Json -Compress'

/** ConvertTo-Json of the uninstall keys: one object or an array; entries without a name are not software. */
export function parseWindowsSoftware(json: string): { name: string; version: string; publisher?: string }[] {
  const text = json.trim()
  if (!text) return []
  const parsed = JSON.parse(text) as { DisplayName?: string; DisplayVersion?: string | null; Publisher?: string | null } | unknown[]
  const seen = new Map<string, { name: string; version: string; publisher?: string }>()
  for (const e of (Array.isArray(parsed) ? parsed : [parsed]) as { DisplayName?: string; DisplayVersion?: string | null; Publisher?: string | null }[]) {
    if (!e?.DisplayName) continue
    const item = { name: e.DisplayName.trim(), version: String(e.DisplayVersion ?? '').trim(), ...(e.Publisher ? { publisher: e.Publisher.trim() } : {}) }
    seen.set(`${item.name}\t${item.version}`, item)
  }
  return [...seen.values()].sort((a, b) => a.name.localeCompare(b.name))
}

/** Upgrades the OS has waiting: apt's simulated upgrade on Debian (no lock, nothing changed). */
async function pendingUpdates(): Promise<{ name: string; from: string; to: string }[] | null> {
  if (process.platform !== 'linux') return null
  const out = await run('apt-get', ['-s', '-o', 'Debug::NoLocking=1', 'upgrade'])
  return out ? parseAptSimulation(out) : null
}

/** "Inst openssl [3.0.11-1~deb12u1] (3.0.15-1~deb12u1 Debian-Security:12/stable-security [amd64])" lines. */
export function parseAptSimulation(out: string): { name: string; from: string; to: string }[] {
  return [...out.matchAll(/^Inst (\S+) \[([^\]]+)\] \((\S+)/gm)].map((m) => ({ name: m[1], from: m[2], to: m[3] }))
}

/** The inventory, taken in a worker thread (collect-worker.ts) so the agent never stalls. */
export function inventoryInWorker(version: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(path.join(__dirname, 'collect-worker.js'), { workerData: { version } })
    worker.once('message', (m: { ok: boolean; data?: Record<string, unknown>; error?: string }) => (m.ok ? resolve(m.data!) : reject(new Error(m.error))))
    worker.once('error', reject)
    worker.once('exit', (code) => reject(new Error(`the inventory worker stopped (${code})`)))
  })
}

export async function inventory(version: string): Promise<Record<string, unknown>> {
  const [system, osInfo, cpu, mem, fs, net, software, bios, board, memLayout, disks, users, services, updates] = await Promise.all([
    si.system(), si.osInfo(), si.cpu(), si.mem(), si.fsSize(), si.networkInterfaces(), installedSoftware(),
    si.bios(), si.baseboard(), si.memLayout(), si.diskLayout(), si.users(), si.services('*'), pendingUpdates().catch(() => null),
  ])
  return {
    version,
    hostname: os.hostname(),
    system: { manufacturer: system.manufacturer, model: system.model, serial: system.serial, uuid: system.uuid, virtual: system.virtual },
    os: { platform: osInfo.platform, distro: osInfo.distro, release: osInfo.release, kernel: osInfo.kernel, arch: osInfo.arch },
    cpu: { brand: `${cpu.manufacturer} ${cpu.brand}`.trim(), cores: cpu.cores, physicalCores: cpu.physicalCores, speed: cpu.speed },
    mem: { total: mem.total, swaptotal: mem.swaptotal },
    fs: fs.map((f) => ({ mount: f.mount, type: f.type, size: f.size, used: f.used })),
    network: (Array.isArray(net) ? net : [net]).filter((n) => !n.internal).map((n) => ({ iface: n.iface, ip4: n.ip4, ip6: n.ip6, mac: n.mac, speed: n.speed })),
    bios: { vendor: bios.vendor, version: bios.version, releaseDate: bios.releaseDate },
    baseboard: { manufacturer: board.manufacturer, model: board.model, serial: board.serial },
    memLayout: memLayout.map((m) => ({ size: m.size, type: m.type, clockSpeed: m.clockSpeed, bank: m.bank })),
    disks: disks.map((d) => ({ device: d.device, type: d.type, name: d.name, size: d.size, serial: d.serialNum, smart: d.smartStatus })),
    users: [...new Set(users.map((u) => u.user))],
    services: services.map((v) => ({ name: v.name, running: v.running, startmode: v.startmode })),
    software,
    updates,
  }
}

/** The counters of the last call, for rates per second. */
let lastNet: { at: number; rx: number; tx: number } | null = null

/**
 * Bytes a second in and out over all interfaces but loopback. On Linux from /proc/net/dev,
 * read asynchronously: systeminformation's networkStats stalls the event loop for seconds.
 */
async function netRates(): Promise<{ netRx: number | null; netTx: number | null }> {
  let rx = 0
  let tx = 0
  if (process.platform === 'linux') {
    const text = await fsp.readFile('/proc/net/dev', 'utf8')
    for (const line of text.split('\n').slice(2)) {
      const m = /^\s*([^:]+):\s*(.*)$/.exec(line)
      if (!m || m[1] === 'lo') continue
      const f = m[2].trim().split(/\s+/).map(Number)
      rx += f[0]
      tx += f[8]
    }
  } else {
    const net = await si.networkStats('*').catch(() => [])
    for (const n of Array.isArray(net) ? net : []) {
      if (/^(lo|loopback)/i.test(n.iface)) continue
      rx += n.rx_bytes ?? 0
      tx += n.tx_bytes ?? 0
    }
  }
  const now = Date.now()
  const prev = lastNet
  lastNet = { at: now, rx, tx }
  if (!prev || now <= prev.at) return { netRx: null, netTx: null }
  const rate = (a: number, b: number) => Math.max(0, ((a - b) * 1000) / (now - prev.at))
  return { netRx: rate(rx, prev.rx), netTx: rate(tx, prev.tx) }
}

/**
 * A minute's figures. Network and disk rates are per second since the previous call (the
 * first call of a process has none yet).
 */
export async function metrics(): Promise<Record<string, number | null>> {
  const [load, mem, fs, procs, net, io] = await Promise.all([si.currentLoad(), si.mem(), si.fsSize(), si.processes(), netRates(), si.fsStats().catch(() => null)])
  return {
    ...net,
    diskRead: io && typeof io.rx_sec === 'number' && io.rx_sec >= 0 ? io.rx_sec : null,
    diskWrite: io && typeof io.wx_sec === 'number' && io.wx_sec >= 0 ? io.wx_sec : null,
    cpu: load.currentLoad,
    load1: os.loadavg()[0],
    memUsed: mem.active,
    memTotal: mem.total,
    swapUsed: mem.swapused,
    diskUse: Math.max(0, ...fs.map((f) => f.use ?? 0)),
    processes: procs.all,
  }
}
