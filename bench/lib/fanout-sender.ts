// Child process: sends messages to one channel at a fixed rate over HTTP, each
// body stamped with the wall-clock time it was sent (subscribers subtract it).
import { Agent } from 'node:http';
import { performance } from 'node:perf_hooks';
import { serve, wallNow } from './fanout-ipc.ts';
import { postJson, replyData, type Reply } from './graphql.ts';
import type { ServerKind } from './fanout-server.ts';
import { percentile } from './stats.ts';

export const SEND_MESSAGE = `mutation Send($input: SendMessageInput!) { sendMessage(input: $input) { id seq } }`;
const TEXT = 'Benchmark message: the quick brown fox jumps over the lazy dog.';

export interface SenderSpec {
  /** Targets are configured once by name and picked per call. */
  name: string;
  kind: ServerKind;
  port: number;
  /** Parley: the sender's bearer token. */
  token: string | null;
  /** Parley: the channel's global ID; peers: the room. */
  channel: string;
  /** Most requests in flight at once; a send due while they are all busy waits for one. */
  maxInFlight: number;
  /** Makes clientMessageIds unique across the run. */
  tag: string;
}

export interface RunSpec {
  target: string;
  /** Messages per second. */
  rate: number;
  durationMs: number;
}

export interface RunResult {
  /** Sends answered with success. */
  sent: number;
  errors: number;
  firstError: string | null;
  /** Highest seq the server answered with. */
  lastSeq: number;
  /** wallNow() of the first send and of the last answer. */
  startedAt: number;
  finishedAt: number;
  /** Sends that were due within the duration but not issued (every request slot busy). */
  behind: number;
  /** Median and p99 time from send to the HTTP answer, in ms. */
  answerP50: number;
  answerP99: number;
}

interface Target {
  spec: SenderSpec;
  agent: Agent;
}

const targets = new Map<string, Target>();
let counter = 0;

function targetOf(name: string): Target {
  const target = targets.get(name);
  if (!target) throw new Error(`no sender target ${name}`);
  return target;
}

function post({ spec, agent }: Target, path: string, headers: Record<string, string>, body: string): Promise<Reply> {
  return postJson(agent, spec.port, path, headers, body);
}

/** Sends one message now; resolves with its seq. */
async function sendOne(target: Target): Promise<number> {
  const s = target.spec;
  const t = wallNow();
  const body = JSON.stringify({ t, p: TEXT });
  if (s.kind === 'parley') {
    // The stamp also leads the clientMessageId, for subscribers that do not select the body.
    const payload = JSON.stringify({
      query: SEND_MESSAGE,
      variables: { input: { channelId: s.channel, body, clientMessageId: `${t}:${s.tag}-${counter++}` } },
    });
    const reply = await post(target, '/graphql', { authorization: `Bearer ${s.token}` }, payload);
    return replyData<{ sendMessage: { seq: number } }>(reply).sendMessage.seq;
  }
  const reply = await post(target, '/send', {}, JSON.stringify({ room: s.channel, body }));
  if (reply.status !== 200) throw new Error(`HTTP ${reply.status}: ${reply.text.slice(0, 300)}`);
  return (JSON.parse(reply.text) as { seq: number }).seq;
}

function run({ target: name, rate, durationMs }: RunSpec): Promise<RunResult> {
  const target = targetOf(name);
  const s = target.spec;
  return new Promise((resolve) => {
    const answers: number[] = [];
    let sent = 0;
    let errors = 0;
    let firstError: string | null = null;
    let lastSeq = 0;
    let issued = 0;
    let inFlight = 0;
    let stopped = false;
    const start = performance.now();
    const startedAt = wallNow();
    const finish = () => {
      const sorted = Float64Array.from(answers).sort();
      const due = Math.floor((rate * durationMs) / 1000);
      resolve({
        sent,
        errors,
        firstError,
        lastSeq,
        startedAt,
        finishedAt: wallNow(),
        behind: Math.max(0, due - issued),
        answerP50: percentile(sorted, 50),
        answerP99: percentile(sorted, 99),
      });
    };
    const issue = () => {
      issued++;
      inFlight++;
      const began = performance.now();
      sendOne(target)
        .then(
          (seq) => {
            sent++;
            answers.push(performance.now() - began);
            if (seq > lastSeq) lastSeq = seq;
          },
          (error: unknown) => {
            errors++;
            firstError ??= (error as Error).message;
          },
        )
        .finally(() => {
          inFlight--;
          if (stopped && inFlight === 0) finish();
          else if (!stopped) tick();
        });
    };
    // Sends fall due evenly (the first at once); a timer tick issues every send
    // that is due, so rates above the timer's resolution are still met.
    const tick = () => {
      if (stopped) return;
      const elapsed = performance.now() - start;
      if (elapsed >= durationMs) {
        stopped = true;
        if (inFlight === 0) finish();
        return;
      }
      const due = Math.floor((elapsed * rate) / 1000) + 1;
      while (issued < due && inFlight < s.maxInFlight) issue();
    };
    const timer = setInterval(() => {
      tick();
      if (stopped) clearInterval(timer);
    }, 1);
    tick();
  });
}

serve(
  {
    configure(spec: SenderSpec): void {
      targets.get(spec.name)?.agent.destroy();
      targets.set(spec.name, { spec, agent: new Agent({ keepAlive: true, maxSockets: spec.maxInFlight }) });
    },
    /** One message to `target`, answered: its seq. */
    probe: (target: string) => sendOne(targetOf(target)),
    run,
  },
  () => {
    for (const { agent } of targets.values()) agent.destroy();
  },
);
