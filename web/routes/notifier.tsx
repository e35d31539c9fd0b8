/*
 * The desktop notifier, an installable web app (PWA) under /app/: its shell, web app
 * manifest, service worker and script (web/notifier/), served without a session (the app
 * itself holds the user's API token), and /app/connect, where a signed-in user confirms the
 * password and the app gets a token of its own (revocable on the account page, like any).
 * Edge and Chrome install it on Windows, macOS and Linux: nothing to download.
 */
import path from 'node:path'
import { Hono } from 'hono'
import type { Accounts } from '../../appliance/services/accounts'
import { loadAssets } from '../assets'
import type { Env } from '../security'
import { tokenConnectRoutes } from './token-connect'

const DIR = path.resolve(__dirname, '../../../web/notifier')
const JS = 'text/javascript; charset=utf-8'
const FILES = {
  'app.js': JS,
  'connect.js': JS,
  'sw.js': JS,
  'app.css': 'text/css; charset=utf-8',
  'icon.svg': 'image/svg+xml',
}

const MANIFEST = {
  name: 'Moat quarantine notifier',
  short_name: 'Moat',
  description: 'New spam in your quarantine, and a search of your mail archive.',
  id: '/app/',
  start_url: '/app/',
  scope: '/app/',
  display: 'standalone',
  background_color: '#ffffff',
  theme_color: '#1f5fbf',
  icons: [{ src: '/app/icon.svg', sizes: 'any', type: 'image/svg+xml', purpose: 'any' }],
}

/** The app's one page; app.js fills it in. Static, so the service worker can keep it. */
const SHELL = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Moat</title><link rel="manifest" href="/app/manifest.webmanifest"><link rel="icon" href="/app/icon.svg">
<link rel="stylesheet" href="/app/app.css"><meta name="theme-color" content="#1f5fbf"><script src="/app/app.js" defer></script></head>
<body><header><img src="/app/icon.svg" alt=""><strong>Moat</strong></header><main>
<section id="connect" hidden><h1>Connect this app</h1><p>Sign in to your appliance once; the app then keeps its own token, which you can revoke on your account page.</p>
<p><a href="/app/connect">Sign in and connect</a></p></section>
<div id="app" hidden>
<section><h1>Your quarantine</h1><p id="counts" role="status">…</p><p class="muted"><span id="checked"></span> <button type="button" id="check">Check now</button> <a href="/quarantine" target="_blank">Open the quarantine</a></p></section>
<section><h2>Notifications</h2><form id="settings"><label>Every <input id="interval" type="number" min="5" max="1440" step="5" value="60"> minutes</label>
<label>by <select id="mode"><option value="poll">checking while this app is open</option><option value="push">push from the appliance (also when closed)</option></select></label>
<button type="submit">Turn on</button></form><p id="settings-status" class="muted"></p></section>
<section><h2>Search your mail</h2><form id="search" role="search"><input id="q" type="search" placeholder='invoice from:bob after:2026-01-01' size="30"><button type="submit">Search</button></form>
<p id="search-status" class="muted"></p><ul id="hits"></ul></section>
<section><h2>About</h2><p>Appliance version <span id="version">…</span>. <span id="update"></span></p></section>
</div></main></body></html>`

export function notifierRoutes(accounts: Accounts): Hono<Env> {
  const app = new Hono<Env>()
  app.get('/app', (c) => c.redirect('/app/', 301))
  app.get('/app/', (c) => c.html(SHELL))
  app.get('/app/manifest.webmanifest', (c) => {
    c.header('Content-Type', 'application/manifest+json')
    return c.body(JSON.stringify(MANIFEST))
  })
  const assets = loadAssets(Object.fromEntries(Object.entries(FILES).map(([name, type]) => [name, { file: path.join(DIR, name), type }])))
  app.get('/app/:asset{[a-z]+\\.(js|css|svg)}', (c) => {
    const name = c.req.param('asset')
    const a = assets.get(name)
    if (!a) return c.notFound()
    c.header('Content-Type', a.type)
    // The worker is checked for updates on every visit; the rest may be cached a little.
    c.header('Cache-Control', name === 'sw.js' ? 'no-cache' : 'max-age=300')
    return c.body(a.body)
  })

  app.route('/', tokenConnectRoutes(accounts, { path: '/app/connect', client: 'desktop notifier', scripts: ['/app/connect.js'] }))
  return app
}
