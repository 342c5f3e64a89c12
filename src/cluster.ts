// Cluster mode: one primary that only supervises, N workers that each run the whole gateway on the shared port.
import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { Logger } from './observability/index.ts';

const METRICS_REQUEST = 'mlgate:metrics';
const METRICS_ANSWER = 'mlgate:metrics-answer';

interface MetricsRequest {
  type: typeof METRICS_REQUEST;
  id: number;
}
interface MetricsAnswer {
  type: typeof METRICS_ANSWER;
  id: number;
  text?: string;
  error?: string;
}

/** Runs in the primary: forks the workers, restarts crashed ones, aggregates their metrics, stops them on SIGTERM. */
export function supervise(workers: number, log: Logger): void {
  const aggregator = new AggregatorRegistry();
  let stopping = false;
  const fork = (): Worker => {
    const w = cluster.fork();
    w.on('message', (msg: MetricsRequest) => {
      if (msg?.type !== METRICS_REQUEST) return;
      aggregator.clusterMetrics().then(
        (text) => w.send({ type: METRICS_ANSWER, id: msg.id, text } satisfies MetricsAnswer),
        (err: unknown) => w.send({ type: METRICS_ANSWER, id: msg.id, error: String(err) } satisfies MetricsAnswer),
      );
    });
    return w;
  };
  for (let i = 0; i < workers; i++) fork();
  cluster.on('exit', (w, code, signal) => {
    if (stopping) return;
    log.error({ worker: w.id, code, signal }, 'worker died; starting another');
    setTimeout(fork, 1000).unref();
  });
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, workers: Object.keys(cluster.workers ?? {}).length }, 'stopping workers');
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
    const check = setInterval(() => {
      if (Object.keys(cluster.workers ?? {}).length === 0) {
        clearInterval(check);
        process.exit(0);
      }
    }, 50);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // SIGHUP (edge certificate reload) goes to every worker; without a handler it would end the primary.
  process.on('SIGHUP', () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGHUP');
  });
  log.info({ workers }, 'cluster primary started');
}

/** In a worker: label this worker's metrics and return a reader of every worker's metrics (via the primary). */
export function workerMetrics(registry: Registry): () => Promise<string> {
  const id = cluster.worker?.id ?? 0;
  registry.setDefaultLabels({ worker: String(id) });
  AggregatorRegistry.setRegistries([registry]);
  // prom-client answers the primary's requests only once an AggregatorRegistry exists in this process.
  new AggregatorRegistry();
  let next = 0;
  const waiting = new Map<number, { resolve: (t: string) => void; reject: (e: Error) => void }>();
  process.on('message', (msg: MetricsAnswer) => {
    if (msg?.type !== METRICS_ANSWER) return;
    const w = waiting.get(msg.id);
    if (!w) return;
    waiting.delete(msg.id);
    if (msg.text !== undefined) w.resolve(msg.text);
    else w.reject(new Error(msg.error ?? 'no metrics'));
  });
  return () =>
    new Promise<string>((resolve, reject) => {
      const msgId = ++next;
      waiting.set(msgId, { resolve, reject });
      process.send?.({ type: METRICS_REQUEST, id: msgId } satisfies MetricsRequest);
      setTimeout(() => {
        if (waiting.delete(msgId)) reject(new Error('metrics from the primary timed out'));
      }, 5000).unref();
    });
}

export function workerCount(setting: number | 'auto', cores: number): number {
  return setting === 'auto' ? Math.max(1, cores) : setting;
}
