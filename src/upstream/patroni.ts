// Patroni's REST API as a second opinion on who is primary: `GET /primary` answers 200 only on the
// node holding the leader lock. Writability alone is fooled by the split-brain window after a
// Patroni dies; the leader lock alone stays 200 for a second after PostgreSQL stopped. Together
// they identify the primary. A burst of logins asks once: a question in flight is shared, and a
// "yes" is reused briefly. A "no" is not kept: during a promotion the next question must be asked.

const CACHE_MS = 200;
const TIMEOUT_MS = 1000;

export class PatroniLeaderCheck {
  private readonly cache = new Map<string, number>();
  private readonly inFlight = new Map<string, Promise<boolean>>();

  /** Whether the node behind `apiUrl` holds the leader lock right now (false when it does not answer within `timeoutMs`). */
  isLeader(apiUrl: string, now = Date.now(), timeoutMs = TIMEOUT_MS): Promise<boolean> {
    const yesAt = this.cache.get(apiUrl);
    if (yesAt !== undefined && now - yesAt < CACHE_MS) return Promise.resolve(true);
    const asking = this.inFlight.get(apiUrl);
    if (asking !== undefined) return asking;
    const question = this.ask(apiUrl, timeoutMs).finally(() => this.inFlight.delete(apiUrl));
    this.inFlight.set(apiUrl, question);
    return question;
  }

  private async ask(apiUrl: string, timeoutMs: number): Promise<boolean> {
    let leader = false;
    try {
      const res = await fetch(new URL('/primary', apiUrl), { method: 'GET', signal: AbortSignal.timeout(timeoutMs) });
      leader = res.status === 200;
      await res.body?.cancel();
    } catch {
      leader = false;
    }
    if (leader) this.cache.set(apiUrl, Date.now());
    else this.cache.delete(apiUrl);
    return leader;
  }

  forget(apiUrl: string): void {
    this.cache.delete(apiUrl);
  }
}
