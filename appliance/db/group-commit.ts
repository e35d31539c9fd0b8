/*
 * Group commit for better-sqlite3. Each durable commit (synchronous=FULL) blocks the event
 * loop for an fsync; running every write queued during one tick in a single transaction
 * makes that one fsync per batch instead of one per message, without weakening durability.
 *
 * Failure: if the batch's transaction fails (disk full, I/O error), every job in it is
 * rejected and nothing of it is kept; callers answer 4xx.
 */
import type { Db } from './database'

interface Job<T> {
  run: () => T
  resolve: (value: T) => void
  reject: (err: unknown) => void
}

export class GroupCommitter {
  private queue: Job<unknown>[] = []
  private scheduled = false
  /** Writes that may wait for the next batch (see later). */
  private riders: (() => void)[] = []
  private riderTimer: NodeJS.Timeout | null = null

  constructor(private readonly db: Db, private readonly maxBatch = 256) {}

  /** Runs `fn` inside the next batch transaction; resolves after that commit. */
  submit<T>(fn: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ run: fn, resolve, reject } as Job<unknown>)
      if (!this.scheduled) {
        this.scheduled = true
        setImmediate(() => this.flush())
      }
    })
  }

  /**
   * A write that need not be durable at once (a tracking row): it rides the next batch that
   * mail makes anyway, so it costs no commit of its own, or is written within `maxWaitMs`
   * when no mail comes. It must not throw: a rider never fails the batch it rides.
   */
  later(fn: () => void, maxWaitMs = 2000): void {
    this.riders.push(fn)
    if (!this.riderTimer) {
      this.riderTimer = setTimeout(() => {
        this.riderTimer = null
        if (this.riders.length && !this.scheduled) {
          this.scheduled = true
          setImmediate(() => this.flush())
        }
      }, maxWaitMs)
      this.riderTimer.unref()
    }
  }

  private flush(): void {
    this.scheduled = false
    const riders = this.riders.splice(0)
    const batch = this.queue.splice(0, this.maxBatch)
    if (this.queue.length) {
      this.scheduled = true
      setImmediate(() => this.flush())
    }
    const results: unknown[] = []
    try {
      this.db.transaction(() => {
        for (const ride of riders) {
          try {
            ride()
          } catch {
            // a rider's failure is its own (it logs it); the mail in the batch still commits
          }
        }
        for (const job of batch) results.push(job.run())
      }).immediate()
    } catch (err) {
      for (const job of batch) job.reject(err)
      return
    }
    batch.forEach((job, i) => job.resolve(results[i]))
  }
}
