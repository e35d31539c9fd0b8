/* The appliance as a system: its version, self-check, updates and host settings (root). */
import fs from 'node:fs'
import path from 'node:path'
import { databasePath, loadSettings } from '../../config'
import { SCHEMA_VERSION, schemaOfFile } from '../../db/database'
import { VERSION } from '../../version'
import { applyPendingHostSettings, runCommand } from '../../services/host-settings'
import { makeReleaseKey, packRelease, ReleaseError } from '../../services/release-package'
import { applyUpdate, currentRelease, healthCheck, incomingFile, lastUpdateStatus, serviceControl, updatesDir } from '../../services/updater'
import { checkForUpdate } from '../../services/updates'
import { type Command, need, UsageError } from '../command'

function loopback(listen: string): string {
  return ['', '0.0.0.0', '::'].includes(listen) ? '127.0.0.1' : listen
}

async function download(url: string, to: string): Promise<void> {
  const res = await fetch(url, { signal: AbortSignal.timeout(600_000) })
  if (!res.ok || !res.body) throw new ReleaseError(`could not download ${url}: HTTP ${res.status}`)
  fs.writeFileSync(to, Buffer.from(await res.arrayBuffer()))
}

export const systemCommands: Command[] = [
  {
    path: ['version'],
    usage: '',
    summary: 'Print the version of Moat and of the Node.js it runs on.',
    run: ({ out }) => out(`moat ${VERSION} (node ${process.version}, schema ${SCHEMA_VERSION})`),
  },
  {
    path: ['selfcheck'],
    usage: '',
    summary: 'Check that this release can run here: its modules load, the native SQLite module works, and it knows the schema of the database in MOAT_DATA_DIR. `moat update` runs it on a new release before switching to it.',
    run({ out, err }) {
      const problems: string[] = []
      const check = (what: string, fn: () => void) => {
        try {
          fn()
        } catch (e) {
          problems.push(`${what}: ${(e as Error).message}`)
        }
      }
      check('better-sqlite3', () => {
        const Database = require('better-sqlite3') as typeof import('better-sqlite3')
        new Database(':memory:').prepare('SELECT 1').get()
      })
      check('haraka', () => require.resolve('haraka/package.json'))
      check('web app', () => require('../../../web/app'))
      check('classifier model', () => (require('../../engine/models') as typeof import('../../engine/models')).loadDefaultModel())
      check('database', () => {
        const v = schemaOfFile(databasePath(loadSettings().dataDir))
        if (v > SCHEMA_VERSION) throw new Error(`its schema ${v} is newer than this release knows (${SCHEMA_VERSION})`)
      })
      for (const p of problems) err(`selfcheck: ${p}`)
      if (problems.length) return 1
      out(`selfcheck: ok (moat ${VERSION}, node ${process.version})`)
    },
  },
  {
    path: ['update'],
    usage: '[FILE | --url URL | --feed | --pending] [--force]',
    summary:
      'Apply a signed release (root): check it, self-check it, switch INSTALL_ROOT/current to it and restart the services; roll back if the new version does not answer its health check. FILE is a .moat release; --url downloads one; --feed takes the newest from MOAT_UPDATE_FEED; --pending applies one uploaded in the web UI.',
    options: {
      url: { type: 'string', description: 'download the release from this URL' },
      feed: { type: 'boolean', description: 'download the release the update feed names, if newer' },
      pending: { type: 'boolean', description: 'apply the release uploaded in the web UI (the path unit does this)' },
      force: { type: 'boolean', description: 'apply even if it is not newer than the running release' },
    },
    async run({ args, opts, out, err }) {
      const s = loadSettings()
      const dir = updatesDir(s.dataDir)
      fs.mkdirSync(dir, { recursive: true })
      let file: string
      let downloaded = false
      if (opts.pending) {
        file = incomingFile(s.dataDir)
        if (!fs.existsSync(file)) {
          out('update: nothing uploaded')
          return 0
        }
        // Taken before it is checked, so a new upload meanwhile is not confused with it.
        const taken = path.join(dir, `applying-${Date.now()}.moat`)
        fs.renameSync(file, taken)
        file = taken
        downloaded = true
      } else if (opts.url || opts.feed) {
        let url = opts.url as string | undefined
        if (!url) {
          const u = await checkForUpdate(VERSION, s.updateFeed)
          if (u.error) throw new ReleaseError(u.error)
          if (!u.newer || !u.url) {
            out(`update: ${u.latest} is the newest release; nothing to do`)
            return 0
          }
          url = u.url
        }
        file = path.join(dir, `download-${Date.now()}.moat`)
        out(`update: downloading ${url}`)
        await download(url, file)
        downloaded = true
      } else {
        need(args, 1, 'release file (or --url, --feed, --pending)')
        file = path.resolve(args[0])
      }
      try {
        const status = await applyUpdate(file, {
          installRoot: s.installRoot,
          dataDir: s.dataDir,
          releaseKeys: s.releaseKeys,
          services: serviceControl(s.serviceControl),
          healthy: healthCheck({ host: loopback(s.listen), webPort: s.webPort, webTls: s.webTls, smtpPort: s.smtpPort, timeoutMs: Number(process.env.MOAT_UPDATE_HEALTH_TIMEOUT_S ?? 300) * 1000 }),
          log: out,
          force: !!opts.force,
        })
        ;(status.state === 'applied' ? out : err)(`update: ${status.state}: ${status.message}`)
        return status.state === 'applied' ? 0 : 1
      } finally {
        if (downloaded) fs.rmSync(file, { force: true })
      }
    },
  },
  {
    path: ['update', 'status'],
    usage: '',
    summary: 'Show the running release and the outcome of the last update.',
    run({ out }) {
      const s = loadSettings()
      const cur = currentRelease(s.installRoot)
      out(`running: ${VERSION}${cur ? ` (${cur.dir})` : ''}`)
      const st = lastUpdateStatus(s.dataDir)
      out(`last update: ${st ? `${new Date(st.at).toISOString()} ${st.state}: ${st.message}` : 'none yet'}`)
    },
  },
  {
    path: ['release', 'keygen'],
    usage: 'DIR',
    summary: 'Make a release signing key pair in DIR (release.key stays with whoever builds releases; release.pub.pem goes into the image’s release-keys).',
    run({ args, out }) {
      need(args, 1, 'folder for the keys')
      const k = makeReleaseKey(path.resolve(args[0]))
      out(`private key ${k.key}, public key ${k.pub}`)
    },
  },
  {
    path: ['release', 'pack'],
    usage: 'TREE OUT --key FILE',
    summary: 'Pack a release tree (what the image has in /opt/moat/releases/<version>) into a signed release file for `moat update`; its version is the tree’s package.json.',
    options: { key: { type: 'string', description: 'the private release key (PEM)' } },
    async run({ args, opts, out }) {
      need(args, 2, 'release tree and output file')
      if (!opts.key) throw new UsageError('--key is required')
      const info = await packRelease(path.resolve(args[0]), path.resolve(args[1]), path.resolve(opts.key as string))
      out(`release ${info.version} written to ${args[1]} (payload ${(info.payload_bytes / 1048576).toFixed(1)} MB, sha256 ${info.payload_sha256.slice(0, 16)}…)`)
    },
  },
  {
    path: ['system', 'apply'],
    usage: '[--root DIR] [--iface NAME] [--dry-run]',
    summary: 'Apply the host name and network settings the setup wizard left (root; started by the moat-system path unit). Restarts nothing itself: the unit restarts the services.',
    options: {
      root: { type: 'string', description: 'the filesystem to write in (default /)' },
      iface: { type: 'string', description: 'the network interface (default eth0)' },
      'dry-run': { type: 'boolean', description: 'write the files only; run no system command' },
    },
    run({ opts, out, err }) {
      const s = loadSettings()
      const r = applyPendingHostSettings(s.dataDir, {
        root: path.resolve((opts.root as string | undefined) ?? '/'),
        iface: (opts.iface as string | undefined) ?? 'eth0',
        run: opts['dry-run'] ? null : runCommand,
        log: out,
      })
      if (!r) out('system apply: no settings pending')
      else if (!r.ok) {
        err(`system apply: ${r.error}`)
        return 1
      }
    },
  },
]
