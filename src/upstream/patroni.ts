// Patroni's REST API as a second opinion on who is primary: `GET /primary` answers 200 only on the
// node holding the leader lock. Writability alone is fooled by the split-brain window after a
// Patroni dies; the leader lock alone stays 200 for a second after PostgreSQL stopped. Together
// they identify the primary. A burst of logins asks once: a question asked in the last few
// milliseconds is shared, and a "yes" is reused briefly. A "no" is not kept, and an older question
// is not joined: during a promotion the answer changes, and a stale "no" would cost a round.

const CACHE_MS = 200;
const TIMEOUT_MS = 1000;
/** A question in flight younger than this is shared; an older one is not joined. */
const JOIN_MS = 20;

export class PatroniLeaderCheck {
  private readonly cache = new Map<string, number>();
  private readonly inFlight = new Map<string, { at: number; answer: Promise<boolean> }>();

  /** Whether the node behind `apiUrl` holds the leader lock right now (false when it does not answer within `timeoutMs`). */
  isLeader(apiUrl: string, now = Date.now(), timeoutMs = TIMEOUT_MS): Promise<boolean> {
    const yesAt = this.cache.get(apiUrl);
    if (yesAt !== undefined && now - yesAt < CACHE_MS) return Promise.resolve(true);
    const asking = this.inFlight.get(apiUrl);
    if (asking !== undefined && now - asking.at <= JOIN_MS) return asking.answer;
    const question = { at: now, answer: this.ask(apiUrl, timeoutMs) };
    void question.answer.finally(() => {
      if (this.inFlight.get(apiUrl) === question) this.inFlight.delete(apiUrl);
    });
    this.inFlight.set(apiUrl, question);
    return question.answer;
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
