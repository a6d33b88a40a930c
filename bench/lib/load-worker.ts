// Child process of LoadGenerator: runs one LoadSpec per message and answers with a LoadResult.
import { Agent } from 'node:http';
import { performance } from 'node:perf_hooks';
import { postJson, replyFailure } from './graphql.ts';
import { CHANNEL, KEY, type LoadResult, type LoadSpec, type WorkerMessage } from './load.ts';

const tell = (message: WorkerMessage) => process.send?.(message);

async function run(spec: LoadSpec): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: spec.concurrency });
  let sent = 0;
  let errors = 0;
  let firstError: string | null = null;
  let measuring = false;
  const latencies: number[] = [];

  async function sendOne(worker: number): Promise<void> {
    const n = sent++;
    const body = spec.template.replace(CHANNEL, spec.channels[worker % spec.channels.length]!).replace(KEY, `${spec.tag}-${worker}-${n}`);
    const started = performance.now();
    let problem: string | null;
    try {
      problem = replyFailure(await postJson(agent, spec.port, spec.path, spec.headers, body));
    } catch (error) {
      problem = (error as Error).message;
    }
    const took = performance.now() - started;
    if (problem) {
      errors++;
      firstError ??= problem;
    } else if (measuring) {
      latencies.push(took);
    }
  }

  const workers = Array.from({ length: spec.concurrency }, (_, w) => w);
  // Warm-up shares the agent, so the measured run starts on open connections.
  await Promise.all(
    workers.map(async (w) => {
      while (sent < spec.warmupRequests) await sendOne(w);
    }),
  );

  measuring = true;
  tell({ type: 'measuring' });
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const deadline = started + spec.durationMs;
  await Promise.all(
    workers.map(async (w) => {
      while (performance.now() < deadline) await sendOne(w);
    }),
  );
  const elapsedMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  agent.destroy();
  return {
    requests: latencies.length,
    sent,
    errors,
    firstError,
    elapsedMs,
    samples: latencies,
    clientCpuMs: (cpu.user + cpu.system) / 1000,
  };
}

process.on('message', (spec: LoadSpec) => {
  run(spec).then(
    (result) => tell({ type: 'result', result }),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
});
process.on('disconnect', () => process.exit(0));
process.send?.('ready');
