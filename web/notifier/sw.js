/*
 * The desktop notifier's service worker (scope /app/): shows what the appliance pushes
 * ("3 new spam, 1 surespam"), and what the open app asks it to show when it polls; a click
 * opens the quarantine. It stores nothing and needs no token: pushes carry only counts.
 */
self.addEventListener('install', () => self.skipWaiting())
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()))

self.addEventListener('push', (event) => {
  let data = {}
  try {
    data = event.data ? event.data.json() : {}
  } catch {
    data = {}
  }
  const title = typeof data.title === 'string' ? data.title : 'New mail in your quarantine'
  event.waitUntil(self.registration.showNotification(title, { body: data.body || 'Open your quarantine', tag: 'moat-counts', data: { url: '/quarantine' } }))
})

self.addEventListener('notificationclick', (event) => {
  event.notification.close()
  // Only pages of this appliance: a notification cannot send the user elsewhere.
  const url = new URL((event.notification.data && event.notification.data.url) || '/quarantine', self.location.origin)
  event.waitUntil(self.clients.openWindow(url.origin === self.location.origin ? url.href : '/quarantine'))
})

// The app shell from the network, else from the cache: the app opens while the appliance is away.
const SHELL = ['/app/', '/app/app.js', '/app/app.css', '/app/icon.svg', '/app/manifest.webmanifest']
self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url)
  if (event.request.method !== 'GET' || url.origin !== self.location.origin || !SHELL.includes(url.pathname)) return
  event.respondWith(
    fetch(event.request)
      .then((res) => {
        const copy = res.clone()
        caches.open('moat-app').then((c) => c.put(event.request, copy))
        return res
      })
      .catch(() => caches.match(event.request)),
  )
})
