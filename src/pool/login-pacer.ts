// When a pool starts server logins. While clients wait and the upstream is trusted: one login per
// waiter not yet covered. While it is in doubt (after a failed login, a server lost, a resume, or a
// login slower than the hedge interval): one login every server_login_hedge_interval, without
// waiting for the earlier ones, at most server_login_parallel in flight; the first that passes
// ends the doubt and the other waiters get theirs in parallel. The interval is jittered (0.5 to 1.5
// times), so that two pollers of one router never fall into step. A switchover or restart leaves the
// upstream unreachable for about a second, and one login may hang for its whole deadline (a router
// still retrying the stopped node, a SYN nobody answers): nobody waits for it. When no client waits
// (min_pool_size refills), failures back off from 50 ms to 250 ms (or server_login_retry if less).
// Pure bookkeeping: the pool owns the timer and the logins.

const MIN_RETRY_MS = 50;
const MAX_RETRY_MS = 250;

export type LoginDecision = 'fan-out' | 'one' | 'none';

export class LoginPacer {
  private inDoubt = false;
  private lastLaunchAt = 0;
  private lastSuccessAt = 0;
  private retryAt = 0;
  private retryDelay = MIN_RETRY_MS;
  /** The hedge interval is jittered, 0.5 to 1.5 times, so that pollers of one router do not fall into step. */
  private jitter = 1;

  /** The upstream may have changed (a resume, a server that died by itself): probe before fanning out. */
  doubt(): void {
    this.inDoubt = true;
  }

  /** A resume: the next login may start at once, as a probe. */
  restart(): void {
    this.inDoubt = true;
    this.lastLaunchAt = 0;
    this.retryAt = 0;
    this.retryDelay = MIN_RETRY_MS;
  }

  launched(now: number): void {
    this.lastLaunchAt = now;
    this.jitter = 0.5 + Math.random();
  }

  succeeded(now: number): void {
    this.inDoubt = false;
    this.lastSuccessAt = now;
    this.retryDelay = MIN_RETRY_MS;
  }

  failed(now: number, serverLoginRetryMs: number): void {
    this.inDoubt = true;
    this.retryAt = now + this.retryDelay;
    this.retryDelay = Math.min(this.retryDelay * 2, Math.min(serverLoginRetryMs, MAX_RETRY_MS));
    if (this.retryDelay < 1) this.retryDelay = MIN_RETRY_MS;
  }

  /** With no client waiting: whether a refill may start now (after a failure, the backoff). */
  mayRefill(now: number): boolean {
    return now >= this.retryAt;
  }

  /** What the pool may start now for waiting clients, given the logins in flight. */
  whileWaiting(now: number, connecting: number, hedgeMs: number, parallel: number): LoginDecision {
    // A login slower than the hedge interval, with clients waiting: the upstream is in doubt.
    if (!this.inDoubt && hedgeMs > 0 && connecting > 0 && now - this.lastLaunchAt >= hedgeMs && this.lastSuccessAt < this.lastLaunchAt) this.inDoubt = true;
    if (!this.inDoubt) return 'fan-out';
    const due = hedgeMs > 0 ? now - this.lastLaunchAt >= hedgeMs * this.jitter && connecting < parallel : connecting === 0 && now >= this.retryAt;
    return due ? 'one' : 'none';
  }

  /** While clients wait: when to look again (the next hedge or retry), or null when an arrival will do. */
  wakeAt(connecting: number, hedgeMs: number): number | null {
    if (hedgeMs > 0 && (this.inDoubt || connecting > 0)) return this.lastLaunchAt + hedgeMs * (this.inDoubt ? this.jitter : 1);
    if (hedgeMs === 0 && this.inDoubt && connecting === 0) return this.retryAt;
    return null;
  }
}
