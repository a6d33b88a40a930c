import {
  createSourceEventStream,
  execute,
  Kind,
  visit,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type OperationDefinitionNode,
} from 'graphql';
import { isAsyncIterable, isPromise, mapAsyncIterator, type Plugin } from 'graphql-yoga';
import type { Context } from '../schema/context.ts';
import type { Viewer } from '../services/viewer.ts';
import { LiveStream } from '../bus/live-stream.ts';
import type { SocketDelivery } from './socket-delivery.ts';

/**
 * Live events are published once and reach every stream of a process as the
 * same object (the channel hub, the pub/sub engines). Executing the selection
 * once per subscriber made fan-out cost a GraphQL execution per delivery;
 * for root fields marked `sharedEvents`, this plugin executes each event once
 * per distinct selection (document and the variables outside the root
 * field's arguments) and hands the result to every subscriber it is valid for
 * (see `executeShared`).
 *
 * Over graphql-ws, a stream that can be consumed by push (a LiveStream) is
 * attached to the socket: each event's `next` frame is serialized once and
 * written to every subscriber's socket in the call that received the event
 * (the app's SocketDelivery). Other streams, and subscriptions over HTTP,
 * are pulled as usual with the shared execution in the map step.
 */
export function useSharedSubscriptionExecution(delivery: SocketDelivery): Plugin<Context> {
  return {
    onSubscribe({ args, setSubscribeFn }) {
      const selection = selectionKey(args);
      if (selection !== null) setSubscribeFn((subscribeArgs) => subscribeShared(subscribeArgs, selection, delivery));
    },
  };
}

async function subscribeShared(args: ExecutionArgs, selection: string, delivery: SocketDelivery) {
  const source = await createSourceEventStream(args);
  if (!isAsyncIterable(source)) return source;
  const operation = delivery.operationOf(args.contextValue);
  const executeEvent = (event: unknown) => executeShared(args, event, selection);
  if (operation && source instanceof LiveStream) return delivery.deliver(source, executeEvent, operation);
  return mapAsyncIterator(source, executeEvent);
}

/** What one execution of an event read of the viewer, coarsest first. */
type Dependence = 'none' | 'role' | 'viewer';

interface Done {
  result: ExecutionResult;
  dependence: Dependence;
  viewer: Viewer;
}

/** One execution of an event: `done` is set as soon as it has finished (at once for a synchronous one). */
interface Slot {
  done: Done | null;
  promise: Promise<Done> | null;
}

/**
 * Executions of one event object, by selection, then by sharing key: '*' for
 * the first execution, then `role:…` or `viewer:…` for executions repeated
 * because an earlier one read the viewer. Keyed weakly by the event, so it
 * goes with the event once every stream has delivered it.
 */
const executions = new WeakMap<object, Map<string, Map<string, Slot>>>();

/**
 * The result of executing `event` for this subscriber, shared with every
 * other subscriber of the same selection it is valid for. Which those are is
 * measured, not declared: the execution sees the viewer through a proxy that
 * records what it reads. Nothing read: the result is everyone's. Only the role
 * and organization: it is shared by viewers with that role. Anything else
 * (the id, the name): only that user's other sockets reuse it. So a field
 * added later that depends on the viewer stays correct, and one that does not
 * keeps fan-out cheap. Each execution gets a fresh context, so loaders batch
 * per event and never serve one event's rows to the next.
 *
 * Synchronous when the execution is (or already was): a selection resolved
 * from the event alone costs the second and later subscribers three map
 * lookups.
 */
function executeShared(args: ExecutionArgs, event: unknown, selection: string): ExecutionResult | Promise<ExecutionResult> {
  const context = args.contextValue as Context;
  const viewer = context.viewer;
  if (!viewer || typeof event !== 'object' || event === null) {
    return execute({ ...args, rootValue: event });
  }
  let bySelection = executions.get(event);
  if (!bySelection) executions.set(event, (bySelection = new Map()));
  let slots = bySelection.get(selection);
  if (!slots) bySelection.set(selection, (slots = new Map()));
  // At most three rounds: '*', then the role's slot, then the viewer's own.
  let key = '*';
  for (;;) {
    let slot = slots.get(key);
    if (!slot) {
      slot = run(args, event, context, viewer);
      slots.set(key, slot);
    }
    if (!slot.done) return slot.promise!.then(() => executeShared(args, event, selection));
    if (reusable(slot.done, viewer)) return slot.done.result;
    key = sharingKey(slot.done.dependence, viewer);
  }
}

function run(args: ExecutionArgs, event: object, context: Context, viewer: Viewer): Slot {
  const reads = new Set<PropertyKey>();
  const watched = new Proxy(viewer, {
    get: (target, property, receiver) => {
      reads.add(property);
      return Reflect.get(target, property, receiver);
    },
    ownKeys: (target) => {
      reads.add('*');
      return Reflect.ownKeys(target);
    },
    has: (target, property) => {
      reads.add(property);
      return Reflect.has(target, property);
    },
  });
  const slot: Slot = { done: null, promise: null };
  const finish = (result: ExecutionResult) => (slot.done = { result, dependence: dependenceOf(reads), viewer });
  const result = execute({ ...args, rootValue: event, contextValue: { ...context, viewer: watched } });
  if (isPromise(result)) slot.promise = result.then(finish);
  else finish(result);
  return slot;
}

const ROLE_FIELDS = new Set<PropertyKey>(['role', 'organizationId']);

function dependenceOf(reads: Set<PropertyKey>): Dependence {
  if (reads.size === 0) return 'none';
  for (const property of reads) if (!ROLE_FIELDS.has(property)) return 'viewer';
  return 'role';
}

function sharingKey(dependence: Dependence, viewer: Viewer): string {
  return dependence === 'role' ? `role:${viewer.organizationId}:${viewer.role}` : `viewer:${viewer.id}`;
}

function reusable(done: Done, viewer: Viewer): boolean {
  if (done.dependence === 'none') return true;
  if (done.dependence === 'role') return done.viewer.organizationId === viewer.organizationId && done.viewer.role === viewer.role;
  return done.viewer.id === viewer.id;
}

/**
 * The selection an execution depends on: the document and the variables used
 * outside the root field's arguments. Null when the operation's root field
 * has not opted in (see `sharedEvents`) or the root selection is not a plain
 * field, so the default per-subscriber execution applies.
 */
function selectionKey(args: ExecutionArgs): string | null {
  const shape = shapeOf(args.document, args.operationName ?? null);
  if (!shape) return null;
  const field = args.schema.getSubscriptionType()?.getFields()[shape.rootField];
  if (!field?.extensions?.sharedEvents) return null;
  const variables = (args.variableValues ?? {}) as Record<string, unknown>;
  return `${shape.id}\u0000${JSON.stringify(shape.variables.map((name) => variables[name] ?? null))}`;
}

interface Shape {
  /** The document text and operation name. */
  id: string;
  rootField: string;
  /** Variables the execution of an event reads. */
  variables: string[];
}

const shapes = new WeakMap<DocumentNode, Map<string | null, Shape | null>>();

function shapeOf(document: DocumentNode, operationName: string | null): Shape | null {
  let byName = shapes.get(document);
  if (!byName) shapes.set(document, (byName = new Map()));
  if (!byName.has(operationName)) byName.set(operationName, computeShape(document, operationName));
  return byName.get(operationName)!;
}

function computeShape(document: DocumentNode, operationName: string | null): Shape | null {
  const operations = document.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
  const operation =
    operationName === null
      ? operations.length === 1
        ? operations[0]
        : undefined
      : operations.find((o) => o.name?.value === operationName);
  const root = operation?.selectionSet.selections;
  const text = document.loc?.source.body;
  if (operation?.operation !== 'subscription' || root?.length !== 1 || root[0]!.kind !== Kind.FIELD || text === undefined) return null;
  const rootField = root[0]!;
  const used = new Set<string>();
  const collect = { Variable: (node: { name: { value: string } }) => void used.add(node.name.value) };
  // Everything but the root field's own arguments: its selection, its
  // directives, and every fragment the selection may spread.
  if (rootField.selectionSet) visit(rootField.selectionSet, collect);
  for (const directive of [...(operation.directives ?? []), ...(rootField.directives ?? [])]) visit(directive, collect);
  for (const definition of document.definitions) if (definition.kind === Kind.FRAGMENT_DEFINITION) visit(definition, collect);
  return { id: `${text}\u0000${operationName ?? ''}`, rootField: rootField.name.value, variables: [...used].sort() };
}
