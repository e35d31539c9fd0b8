/*
 * The inventory, taken in a worker thread: systeminformation reads much of it with execSync
 * (services, memory and disk layout, BIOS…), which would stall the agent's own event loop
 * for seconds, its sending and its schedules with it.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { inventory } from './collect'

if (parentPort) {
  const port = parentPort
  inventory((workerData as { version: string }).version).then(
    (data) => port.postMessage({ ok: true, data }),
    (err) => port.postMessage({ ok: false, error: String((err as Error)?.stack ?? err) }),
  )
}
