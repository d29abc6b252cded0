// Patroni's REST API as a second opinion on who is primary: `GET /primary` answers 200 only on the
// node holding the leader lock. Writability alone is fooled by the split-brain window after a
// Patroni dies; the leader lock alone stays 200 for a second after PostgreSQL stopped. Together
// they identify the primary. Answers are cached briefly so a burst of logins asks once.

const CACHE_MS = 200;
const TIMEOUT_MS = 1000;

export class PatroniLeaderCheck {
  private readonly cache = new Map<string, { at: number; leader: boolean }>();

  /** Whether the node behind `apiUrl` holds the leader lock right now (false when it does not answer). */
  async isLeader(apiUrl: string, now = Date.now()): Promise<boolean> {
    const hit = this.cache.get(apiUrl);
    if (hit !== undefined && now - hit.at < CACHE_MS) return hit.leader;
    let leader = false;
    try {
      const res = await fetch(new URL('/primary', apiUrl), { method: 'GET', signal: AbortSignal.timeout(TIMEOUT_MS) });
      leader = res.status === 200;
      await res.body?.cancel();
    } catch {
      leader = false;
    }
    this.cache.set(apiUrl, { at: Date.now(), leader });
    return leader;
  }

  forget(apiUrl: string): void {
    this.cache.delete(apiUrl);
  }
}
