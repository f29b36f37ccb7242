import type { Batch } from './traffic.js';

/**
 * A tracking client as the contract asks clients to behave: it sends a batch
 * until it gets a 202, and sends the very same events again after a 503, a 429 or
 * a lost connection (each attempt stamps a fresh `sentAt`, as a real SDK would).
 * It records every attempt, so a test can say what the client went through.
 */

export interface Attempt {
  batch: number;
  /** HTTP status, or 0 when no answer came (connection refused or reset, timeout). */
  status: number;
  /** How long the answer took. */
  ms: number;
  /** When the attempt started (epoch ms). */
  at: number;
}

export interface ClientOptions {
  /**
   * Pause before sending a refused batch again. The API's Retry-After says 5 s or
   * more; a test client that retries sooner only makes the outage harsher.
   */
  retryDelayMs?: number;
  timeoutMs?: number;
  /** Give up on a batch after this long (the test then fails). */
  deadlineMs?: number;
  /** How far the client's clock is off: its `sentAt` is stamped with it. */
  clockOffsetMs?: number;
}

export class RetryingClient {
  readonly attempts: Attempt[] = [];
  #delivered = 0;

  constructor(
    private readonly url: string,
    private readonly writeKey: string,
    private readonly options: ClientOptions = {},
  ) {}

  /** Batches answered 202 so far. */
  get delivered(): number {
    return this.#delivered;
  }

  /** Sends once, whatever the answer. */
  async sendOnce(batch: Batch, index: number): Promise<Attempt> {
    const at = Date.now();
    let status = 0;
    try {
      const response = await fetch(`${this.url}/v1/batch`, {
        method: 'POST',
        headers: { authorization: `Bearer ${this.writeKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ sentAt: Date.now() + (this.options.clockOffsetMs ?? 0), events: batch.events }),
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 15_000),
      });
      status = response.status;
      const body = (await response.json()) as { accepted?: number };
      if (status === 202 && body.accepted !== batch.events.length) {
        throw new Error(`batch ${index}: ${body.accepted} of ${batch.events.length} events accepted`);
      }
    } catch (error) {
      if (status === 202) throw error;
    }
    const attempt = { batch: index, status, ms: Date.now() - at, at };
    this.attempts.push(attempt);
    return attempt;
  }

  /** Sends until the batch is accepted; fails at once on an answer that no retry can change. */
  async deliver(batch: Batch, index: number): Promise<void> {
    const deadline = Date.now() + (this.options.deadlineMs ?? 90_000);
    for (;;) {
      const { status } = await this.sendOnce(batch, index);
      if (status === 202) {
        this.#delivered += 1;
        return;
      }
      if (status !== 0 && status !== 429 && status < 500) {
        throw new Error(`batch ${index} refused with ${status}; retrying cannot help`);
      }
      if (Date.now() > deadline) throw new Error(`batch ${index} still not accepted (last answer ${status})`);
      await new Promise((resolve) => setTimeout(resolve, this.options.retryDelayMs ?? 200));
    }
  }

  /**
   * Delivers the batches in order, `concurrency` at a time, pausing `paceMs`
   * between the batches of each lane: a steady stream a test can break into.
   */
  stream(batches: readonly Batch[], { concurrency = 2, paceMs = 0 } = {}): Promise<void> {
    let next = 0;
    const lane = async () => {
      while (next < batches.length) {
        const index = next++;
        await this.deliver(batches[index]!, index);
        if (paceMs > 0) await new Promise((resolve) => setTimeout(resolve, paceMs));
      }
    };
    return Promise.all(Array.from({ length: concurrency }, lane)).then(() => undefined);
  }
}
