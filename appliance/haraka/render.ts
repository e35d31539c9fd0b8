/*
 * Renders the runtime Haraka root (DATA_DIR/haraka) from the templates beside this file and
 * the settings. Moat's own settings are the single source of truth; Haraka's files are
 * derived from them and rewritten only when their content changes (haraka-config would
 * otherwise see a change and reload).
 */
import fs from 'node:fs'
import path from 'node:path'
import type { Settings } from '../config'
import { ensureCertificate } from '../tls'

const TEMPLATE_DIR = path.resolve(__dirname, '../../../appliance/haraka/config')
const PLUGIN_DIR = path.resolve(__dirname, '../../../plugins')

function writeIfChanged(file: string, content: string): void {
  try {
    if (fs.readFileSync(file, 'utf8') === content) return
  } catch {
    // missing: write it
  }
  const tmp = `${file}.tmp`
  fs.writeFileSync(tmp, content)
  fs.renameSync(tmp, file)
}

function linkTo(target: string, link: string): void {
  let current: string | null = null
  try {
    current = fs.readlinkSync(link)
  } catch {
    current = null
  }
  if (current === target) return
  fs.rmSync(link, { force: true, recursive: true })
  fs.symlinkSync(target, link)
}

// RFC 7919's ffdhe2048 group. Haraka generates DH parameters at first start when the file is
// missing, which takes minutes on a small VM; our ciphers are ECDHE-only, so a standard group
// is as good as any and costs nothing.
const FFDHE2048 = `-----BEGIN DH PARAMETERS-----
MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==
-----END DH PARAMETERS-----
`

function listenAddress(settings: Settings): string {
  const host = settings.listen.includes(':') ? `[${settings.listen}]` : settings.listen
  return `${host}:${settings.smtpPort},${host}:${settings.submissionPort}`
}

export function renderHarakaRoot(settings: Settings, log: (msg: string) => void = () => {}): string {
  const root = path.join(settings.dataDir, 'haraka')
  const configDir = path.join(root, 'config')
  fs.mkdirSync(configDir, { recursive: true })
  fs.mkdirSync(path.join(root, 'queue'), { recursive: true })
  const values: Record<string, string> = {
    listen: listenAddress(settings),
    maxMessageBytes: String(settings.maxMessageBytes),
    logLevel: settings.logLevel,
    submissionPort: String(settings.submissionPort),
    outboundTimeout: String(settings.outboundTimeoutSeconds),
    smtpIdleTimeout: String(settings.smtpIdleTimeoutSeconds),
  }
  const tls = ensureCertificate(settings.dataDir, settings.hostname, log)
  if (tls) {
    writeIfChanged(path.join(configDir, 'tls_key.pem'), fs.readFileSync(tls.key, 'utf8'))
    fs.chmodSync(path.join(configDir, 'tls_key.pem'), 0o600)
    writeIfChanged(path.join(configDir, 'tls_cert.pem'), fs.readFileSync(tls.cert, 'utf8'))
  }
  for (const name of fs.readdirSync(TEMPLATE_DIR)) {
    let text = fs.readFileSync(path.join(TEMPLATE_DIR, name), 'utf8')
    if (name === 'plugins' && !tls) text = text.replace(/^tls$/m, '# tls: no certificate')
    writeIfChanged(
      path.join(configDir, name),
      text.replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
        if (!(key in values)) throw new Error(`template ${name} uses unknown setting ${key}`)
        return values[key]
      }),
    )
  }
  writeIfChanged(path.join(configDir, 'me'), `${settings.hostname}\n`)
  if (!fs.existsSync(path.join(configDir, 'dhparams.pem'))) writeIfChanged(path.join(configDir, 'dhparams.pem'), FFDHE2048)
  // Haraka finds folder plugins under its root and resolves their package.json "main"
  // relative to that folder, so each gets a small folder here pointing at our build, with
  // its default config linked from the source tree.
  const pluginsRoot = path.join(root, 'plugins')
  fs.mkdirSync(pluginsRoot, { recursive: true })
  for (const name of fs.readdirSync(PLUGIN_DIR)) {
    const src = path.join(PLUGIN_DIR, name)
    if (!fs.existsSync(path.join(src, 'package.json'))) continue
    const dest = path.join(pluginsRoot, name)
    fs.mkdirSync(dest, { recursive: true })
    const pkg = JSON.parse(fs.readFileSync(path.join(src, 'package.json'), 'utf8'))
    writeIfChanged(
      path.join(dest, 'package.json'),
      `${JSON.stringify({ name, private: true, main: path.resolve(src, pkg.main) }, null, 2)}\n`,
    )
    linkTo(path.join(src, 'config'), path.join(dest, 'config'))
  }
  return root
}
