import type { FastifyReply, FastifyRequest } from 'fastify';
import { HttpError } from '@tally/server';

/**
 * Bounds the bytes of batch bodies the ingest API reads and processes at once.
 *
 * A batch costs memory from its first byte read to its 202: the body, the events
 * parsed from it, their rows and the job sent to Redis, several times the body in
 * all. Without a bound that cost grows with the number of clients sending at once
 * (BENCHMARKS.md: 64 clients took the ingest API to 378 MB against 261 MB for 8),
 * and under a heap limit it ends the process. A request therefore waits, before its
 * body is read, until its bytes fit in the budget; the body stays in the socket
 * meanwhile. Requests are let in first come, first served, so a large one is not
 * overtaken for ever by small ones, and one larger than the whole budget is let in
 * alone. One that cannot get in within `maxWaitMs` is refused with 429 and
 * Retry-After, like every other overload, and has changed nothing.
 */
export class BodyBudget {
  private inFlight = 0;
  private readonly waiting: { bytes: number; admit: () => void }[] = [];

  constructor(
    /** Bytes of bodies in flight at most (one larger body is let in alone). */
    readonly capacityBytes: number,
    readonly maxWaitMs: number,
  ) {}

  /** Bytes of the bodies let in and not yet answered. */
  get bytesInFlight(): number {
    return this.inFlight;
  }

  get requestsWaiting(): number {
    return this.waiting.length;
  }

  /**
   * Resolves with a release function once `bytes` fit; rejects with a 429 after
   * `maxWaitMs`. Release exactly once, when the request is over however it ended.
   */
  acquire(bytes: number): Promise<() => void> {
    if (this.waiting.length === 0 && this.fits(bytes)) return Promise.resolve(this.admit(bytes));
    return new Promise((resolve, reject) => {
      const entry = {
        bytes,
        admit: () => {
          clearTimeout(timer);
          resolve(this.admit(bytes));
        },
      };
      const timer = setTimeout(() => {
        this.waiting.splice(this.waiting.indexOf(entry), 1);
        // It may have been the head, holding back smaller requests that fit.
        this.letIn();
        reject(this.busy());
      }, this.maxWaitMs);
      this.waiting.push(entry);
    });
  }

  private busy(): HttpError {
    const seconds = Math.max(1, Math.ceil(this.maxWaitMs / 1_000));
    return new HttpError(
      429,
      `The ingest API is busy with other batches (at most ${this.capacityBytes} bytes of bodies at once, MAX_INFLIGHT_BODY_BYTES) ` +
        `and this one waited ${seconds} s for its turn; nothing was accepted, send the same batch again shortly.`,
      { 'retry-after': String(seconds) },
    );
  }

  private fits(bytes: number): boolean {
    return this.inFlight === 0 || this.inFlight + bytes <= this.capacityBytes;
  }

  private admit(bytes: number): () => void {
    this.inFlight += bytes;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inFlight -= bytes;
      this.letIn();
    };
  }

  private letIn(): void {
    while (this.waiting.length > 0 && this.fits(this.waiting[0]!.bytes)) this.waiting.shift()!.admit();
  }
}

/**
 * What a request is charged: its Content-Length when the body comes as is, else
 * the most it may inflate to (a compressed or chunked body's size is known only
 * once it has been read, and it is checked against `maxBodyBytes` then).
 */
export function chargedBytes(request: FastifyRequest, maxBodyBytes: number): number {
  const encoding = (request.headers['content-encoding'] ?? '').trim().toLowerCase();
  const length = Number(request.headers['content-length']);
  if ((encoding === '' || encoding === 'identity') && Number.isSafeInteger(length) && length >= 0) return Math.min(length, maxBodyBytes);
  return maxBodyBytes;
}

/**
 * An onRequest hook that takes the request's bytes from the budget, and gives them
 * back when the response is over or the client went away, whichever comes first.
 */
export function admitWithin(budget: BodyBudget, maxBodyBytes: number, onRefused: () => void) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    let release: () => void;
    try {
      release = await budget.acquire(chargedBytes(request, maxBodyBytes));
    } catch (error) {
      onRefused();
      throw error;
    }
    // 'close' comes once the answer is sent, and also when the connection ends before it is
    // (perhaps already, while this request waited).
    reply.raw.once('close', release);
    if (request.raw.socket?.destroyed !== false) release();
  };
}
