/*
 * The desktop notifier (an installable web app at /app/): every hour, or as often as the user
 * chooses, a notification "N new spam, M surespam" when there is any; a click opens the
 * quarantine. A search box into the LiveArchive, and About with the version check. It talks
 * to /api/v1 with the user's own API token, which /app/connect hands it after sign-in.
 *
 * Two ways to be told: Web Push (the appliance pushes through the browser vendor's push
 * service, also when the app is closed) or polling (the open app asks the appliance). The
 * user chooses; push falls back to polling when the browser cannot subscribe.
 */
const $ = (sel) => document.querySelector(sel)
const store = {
  get token() { return localStorage.getItem('moat.token') },
  get interval() { return Number(localStorage.getItem('moat.interval')) || 60 },
  get mode() { return localStorage.getItem('moat.mode') || 'poll' },
  get since() { return Number(localStorage.getItem('moat.since')) || 0 },
  set(k, v) { localStorage.setItem(`moat.${k}`, String(v)) },
}

async function api(path, init = {}) {
  const res = await fetch(path, { ...init, headers: { ...(init.headers || {}), Authorization: `Bearer ${store.token}` } })
  if (res.status === 401) {
    // Revoked on the account page, or never valid: connect again.
    localStorage.removeItem('moat.token')
    show()
    throw new Error('not connected')
  }
  return res
}

function say(sel, text, error = false) {
  const el = $(sel)
  el.textContent = text
  el.classList.toggle('error', error)
}

let registration = null
let timer = null

/** Asks for the counts since the last look and notifies when there is anything new. */
async function poll() {
  const since = store.since || Date.now() - store.interval * 60_000
  const now = Date.now()
  const counts = await (await api(`/api/v1/counts?since=${since}`)).json()
  store.set('since', now)
  say('#counts', `${counts.spam} new spam, ${counts.surespam} surespam`)
  $('#checked').textContent = `since ${new Date(since).toLocaleString()}`
  if (counts.spam + counts.surespam > 0 && Notification.permission === 'granted' && registration) {
    await registration.showNotification(`${counts.spam} new spam, ${counts.surespam} surespam`, { body: 'Open your quarantine', tag: 'moat-counts', data: { url: '/quarantine' } })
  }
  return counts
}

function schedule() {
  clearInterval(timer)
  // Polling runs while the app is open; with push, the appliance tells the browser itself.
  if (store.mode === 'poll') timer = setInterval(() => poll().catch(() => {}), store.interval * 60_000)
}

const base64ToBytes = (b64) => Uint8Array.from(atob(b64.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (b64.length % 4)) % 4)), (c) => c.charCodeAt(0))

async function subscribePush() {
  const { public_key: key } = await (await api('/api/v1/push/key')).json()
  // A browser that cannot reach its vendor's push service may never answer: give it 8 s.
  const sub = await Promise.race([
    registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: base64ToBytes(key) }),
    new Promise((_, reject) => setTimeout(() => reject(new Error('the browser’s push service did not answer')), 8000)),
  ])
  const res = await api('/api/v1/push/subscriptions', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ subscription: sub.toJSON(), interval_minutes: store.interval }) })
  if (!res.ok) throw new Error((await res.json()).error)
}

async function applySettings(event) {
  event?.preventDefault()
  store.set('interval', Math.min(1440, Math.max(5, Number($('#interval').value) || 60)))
  const wanted = $('#mode').value
  const permission = await Notification.requestPermission()
  if (permission !== 'granted') {
    say('#settings-status', 'Notifications are blocked in this browser: allow them for this site to be told.', true)
    return
  }
  store.set('mode', wanted)
  if (wanted === 'push') {
    try {
      await subscribePush()
      say('#settings-status', `Pushed every ${store.interval} minutes when there is new spam, also while this app is closed.`)
    } catch (err) {
      store.set('mode', 'poll')
      $('#mode').value = 'poll'
      say('#settings-status', `Push is not available here (${err.message}); checking every ${store.interval} minutes while this app is open.`, true)
    }
  } else {
    const sub = registration && (await registration.pushManager.getSubscription().catch(() => null))
    if (sub) {
      await api('/api/v1/push/subscriptions', { method: 'DELETE', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ endpoint: sub.endpoint }) }).catch(() => {})
      await sub.unsubscribe().catch(() => {})
    }
    say('#settings-status', `Checking every ${store.interval} minutes while this app is open.`)
  }
  schedule()
}

async function search(event) {
  event.preventDefault()
  const q = $('#q').value.trim()
  const list = $('#hits')
  list.replaceChildren()
  if (!q) return
  const res = await api(`/api/v1/archive?q=${encodeURIComponent(q)}&limit=20`)
  const body = await res.json()
  if (!res.ok) return say('#search-status', body.error, true)
  say('#search-status', body.items.length ? '' : 'No messages match.')
  for (const hit of body.items) {
    const li = document.createElement('li')
    const a = document.createElement('a')
    a.href = `/archive/${Number(hit.id)}`
    a.target = '_blank'
    a.textContent = hit.subject || '(no subject)'
    li.append(a, ` — ${hit.from_header || hit.mail_from} · ${new Date(hit.received_at).toLocaleString()}`)
    list.append(li)
  }
}

async function about() {
  const v = await (await api('/api/v1/version')).json()
  $('#version').textContent = v.version
  $('#update').textContent = v.error ? v.error : v.newer ? `Moat ${v.latest} is available.${v.notes ? ` ${v.notes}` : ''}` : `This is the newest release (${v.latest}).`
}

function show() {
  const connected = !!store.token
  $('#connect').hidden = connected
  $('#app').hidden = !connected
}

async function start() {
  show()
  if ('serviceWorker' in navigator) registration = await navigator.serviceWorker.register('/app/sw.js', { scope: '/app/' })
  if (!store.token) return
  $('#interval').value = store.interval
  $('#mode').value = store.mode
  $('#settings').addEventListener('submit', applySettings)
  $('#search').addEventListener('submit', (e) => search(e).catch((err) => say('#search-status', err.message, true)))
  $('#check').addEventListener('click', () => poll().catch((err) => say('#counts', err.message, true)))
  if (Notification.permission !== 'granted') say('#settings-status', 'Allow notifications to be told about new spam.')
  await Promise.all([poll().catch((err) => say('#counts', err.message, true)), about().catch(() => {})])
  schedule()
  document.body.dataset.ready = 'yes'
}

start()
