// The benchmarks' measurement maths: percentiles of samples and of latency
// histograms, rates, and slices that alternate the servers compared.

/** Latency summary of one measured run, in milliseconds. */
export interface LatencySummary {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function summarize(samples: number[]): LatencySummary {
  const sorted = Float64Array.from(samples).sort();
  let total = 0;
  for (const value of sorted) total += value;
  return {
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1]! : Number.NaN,
    mean: sorted.length ? total / sorted.length : Number.NaN,
  };
}

export function median(samples: number[]): number {
  return percentile(Float64Array.from(samples).sort(), 50);
}

/** Events per second from a count over `ms` milliseconds. */
export function perSecond(count: number, ms: number): number {
  return (count / ms) * 1000;
}

/**
 * Runs `measure` for each lane in `slices` alternating turns (A B, B A, A B, ...),
 * so that a burst of other work on the machine hits every lane alike; returns
 * each lane's results in slice order, in the lanes' order.
 */
export async function inSlices<L, R>(lanes: readonly L[], slices: number, measure: (lane: L, slice: number) => Promise<R>): Promise<R[][]> {
  const results = lanes.map((): R[] => []);
  for (let slice = 0; slice < slices; slice++) {
    const order = lanes.map((_, i) => i);
    if (slice % 2 === 1) order.reverse();
    for (const i of order) results[i]!.push(await measure(lanes[i]!, slice));
  }
  return results;
}

// Latency histogram that subscriber processes fill per delivery and the parent
// merges: hundreds of thousands of samples a second are too many to ship as arrays.

/** 10 µs buckets up to 100 ms, then 1 ms buckets up to 60 s; slower lands in the last bucket. */
const FINE_MS = 0.01;
const FINE_LIMIT_MS = 100;
const COARSE_MS = 1;
const COARSE_LIMIT_MS = 60_000;
const FINE_BUCKETS = FINE_LIMIT_MS / FINE_MS;
const BUCKETS = FINE_BUCKETS + (COARSE_LIMIT_MS - FINE_LIMIT_MS) / COARSE_MS + 1;

export interface LatencyStats {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
  /** Samples below zero (clock skew between processes); counted as 0. */
  negative: number;
}

/**
 * Per message, the latency of its first receipt by any subscriber (the
 * subscriber processes each report theirs): a message that is late for every
 * subscriber was held up before fan-out (the sender, the server, the
 * database, or the whole machine stalling) and shows here; one that is late
 * only for some subscribers does not. `late` counts the messages already
 * over `lateMs` at their first receipt.
 */
export function firstReceipts(
  perProcess: Map<number, number>[],
  lateMs: number,
): { count: number; p50: number; p99: number; late: number } {
  const first = new Map<number, number>();
  for (const bySeq of perProcess) for (const [seq, ms] of bySeq) first.set(seq, Math.min(ms, first.get(seq) ?? Infinity));
  const sorted = Float64Array.from(first.values()).sort();
  return {
    count: sorted.length,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    late: sorted.filter((ms) => ms > lateMs).length,
  };
}

export class Histogram {
  readonly counts = new Uint32Array(BUCKETS);
  count = 0;
  sum = 0;
  max = 0;
  negative = 0;

  add(ms: number): void {
    if (ms < 0) {
      this.negative++;
      ms = 0;
    }
    const index =
      ms < FINE_LIMIT_MS ? Math.floor(ms / FINE_MS) : Math.min(BUCKETS - 1, FINE_BUCKETS + Math.floor((ms - FINE_LIMIT_MS) / COARSE_MS));
    this.counts[index]!++;
    this.count++;
    this.sum += ms;
    if (ms > this.max) this.max = ms;
  }

  reset(): void {
    this.counts.fill(0);
    this.count = 0;
    this.sum = 0;
    this.max = 0;
    this.negative = 0;
  }

  /** A copy that survives IPC (structured clone keeps the typed array). */
  snapshot(): HistogramData {
    return { counts: this.counts.slice(), count: this.count, sum: this.sum, max: this.max, negative: this.negative };
  }
}

export interface HistogramData {
  counts: Uint32Array;
  count: number;
  sum: number;
  max: number;
  negative: number;
}

export function mergeHistograms(parts: HistogramData[]): HistogramData {
  const counts = new Uint32Array(BUCKETS);
  let count = 0;
  let sum = 0;
  let max = 0;
  let negative = 0;
  for (const part of parts) {
    for (let i = 0; i < BUCKETS; i++) counts[i]! += part.counts[i]!;
    count += part.count;
    sum += part.sum;
    max = Math.max(max, part.max);
    negative += part.negative;
  }
  return { counts, count, sum, max, negative };
}

/** Upper edge of a bucket: a percentile is reported no lower than the samples it stands for. */
function bucketTop(index: number): number {
  return index < FINE_BUCKETS ? (index + 1) * FINE_MS : FINE_LIMIT_MS + (index - FINE_BUCKETS + 1) * COARSE_MS;
}

/** Nearest-rank percentiles, as `percentile`, to the histogram's resolution. */
export function latencyStats(h: HistogramData): LatencyStats {
  const at = (p: number) => {
    if (h.count === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil((p / 100) * h.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += h.counts[i]!;
      if (seen >= rank) return Math.min(bucketTop(i), h.max);
    }
    return h.max;
  };
  return {
    count: h.count,
    p50: at(50),
    p90: at(90),
    p99: at(99),
    max: h.count ? h.max : Number.NaN,
    mean: h.count ? h.sum / h.count : Number.NaN,
    negative: h.negative,
  };
}
