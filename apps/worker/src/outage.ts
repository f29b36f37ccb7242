import type { Worker } from 'bullmq';
import type { Logger } from '@tally/logger';
import { isDatabaseUnavailable } from './postgres-errors.js';

/**
 * Stops a worker from taking jobs for a while after Postgres was found unreachable.
 * Each failed job is retried with its own backoff anyway; without this pause the
 * worker would also pull every waiting job, fail it within milliseconds and burn
 * one of its attempts, churning through the whole queue while Postgres restarts.
 * The pause doubles while failures continue (up to `maxMs`) and resets on success.
 */
export class OutagePause {
  #worker: Worker | undefined;
  #pauseMs = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(
    private readonly logger: Logger,
    private readonly minMs = 1_000,
    private readonly maxMs = 30_000,
  ) {}

  attach(worker: Worker): void {
    this.#worker = worker;
  }

  /** Call before the failed job is handed back to BullMQ, so that no next job is fetched with it. */
  failed(error: unknown): void {
    const worker = this.#worker;
    if (!worker || this.#closed || this.#timer || !isDatabaseUnavailable(error)) return;
    this.#pauseMs = Math.min(this.maxMs, this.#pauseMs === 0 ? this.minMs : this.#pauseMs * 2);
    this.logger.warn({ pauseMs: this.#pauseMs, err: error }, 'Postgres unreachable: not taking jobs for a while');
    void worker.pause(true).catch((err: unknown) => this.logger.error({ err }, 'could not pause the worker'));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (!this.#closed) worker.resume();
    }, this.#pauseMs);
  }

  succeeded(): void {
    this.#pauseMs = 0;
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
