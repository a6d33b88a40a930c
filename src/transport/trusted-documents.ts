import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { GraphQLError, parse } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { usePersistedOperations } from '@graphql-yoga/plugin-persisted-operations';
import type { TrustedDocumentsConfig } from '../config.ts';
import { StartupError } from '../startup-error.ts';

/**
 * Trusted documents (persisted operations): the manifest codegen's client
 * preset writes (`persisted-documents.json`, an object of id → document text,
 * each id "sha256:" and the hex SHA-256 of its text), loaded once at start.
 * Clients may send an id instead of the text; with `only`, nothing but a
 * document of the manifest runs. HTTP applies this through Yoga's
 * persisted-operations plugin (`httpPlugins`), graphql-ws through
 * `documentFor`, with the same ids, rule and errors.
 */
export interface TrustedDocuments {
  /** Refuse every document that is not in the manifest (TRUSTED_DOCUMENTS_ONLY). */
  readonly only: boolean;
  /** The text of the document with this id (as `documentId` spells it: "sha256:<hex>"), or null. */
  text(id: string): string | null;
  /** Whether `text` is exactly the text of a document in the manifest. */
  trusts(text: string): boolean;
}

const SHA256_ID = /^sha256:([0-9a-f]{64})$/;

/** Reads and checks the manifest; every way it can be unusable is a StartupError naming the file. */
export function loadTrustedDocuments(config: TrustedDocumentsConfig): TrustedDocuments {
  const { manifest: path, only } = config;
  const fail = (problem: string) => new StartupError(`TRUSTED_DOCUMENTS: ${path} ${problem}`);
  let raw: string;
  try {
    raw = readFileSync(path, 'utf8');
  } catch (error) {
    throw fail(
      `cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); run \`npm run codegen\` to write it`,
    );
  }
  let entries: unknown;
  try {
    entries = JSON.parse(raw);
  } catch (error) {
    throw fail(`is not JSON: ${(error as Error).message}`);
  }
  if (typeof entries !== 'object' || entries === null || Array.isArray(entries)) {
    throw fail('must be a JSON object of document id → document text (codegen’s persisted-documents.json)');
  }
  const byId = new Map<string, string>();
  for (const [id, text] of Object.entries(entries)) {
    if (typeof text !== 'string') throw fail(`has a document "${id}" whose text is not a string`);
    const hex = SHA256_ID.exec(id)?.[1];
    // Clients name a document by the SHA-256 of its text (Apollo's
    // persistedQuery.sha256Hash says so), so an id from another hash would
    // never match what they send.
    if (!hex || hex !== createHash('sha256').update(text).digest('hex')) {
      throw fail(
        `has a document "${id}" whose id is not "sha256:" and the SHA-256 of its text (set hashAlgorithm: 'sha256' in codegen.ts)`,
      );
    }
    try {
      parse(text);
    } catch (error) {
      throw fail(`has a document "${id}" that is not GraphQL: ${(error as Error).message}`);
    }
    byId.set(id, text);
  }
  if (byId.size === 0) throw fail('has no documents');
  const texts = new Set(byId.values());
  return {
    only,
    text: (id) => byId.get(id) ?? null,
    trusts: (text) => texts.has(text),
  };
}

/** What says which document a request runs: HTTP params, or a graphql-ws subscribe payload. */
interface DocumentParams {
  query?: unknown;
  documentId?: unknown;
  extensions?: unknown;
}

/**
 * The id a request names its document by, spelled as the manifest spells it,
 * or null: `documentId` as is, or Apollo's `extensions.persistedQuery`
 * (`{ version: 1, sha256Hash: "<hex>" }`) with the "sha256:" prefix added.
 */
export function documentIdOf(params: DocumentParams): string | null {
  if (typeof params.documentId === 'string') return params.documentId;
  const persisted = (params.extensions as { persistedQuery?: { version?: unknown; sha256Hash?: unknown } } | null | undefined)
    ?.persistedQuery;
  if (persisted?.version === 1 && typeof persisted.sha256Hash === 'string') return `sha256:${persisted.sha256Hash}`;
  return null;
}

// The errors both transports answer with: codes of ours, and an HTTP status
// Yoga sets from `extensions.http` (and leaves out of the response).
const unknownDocumentId = () => new GraphQLError('Unknown document id', { extensions: { code: 'NOT_FOUND', http: { status: 404 } } });
const untrustedDocument = () =>
  new GraphQLError('Only trusted documents are accepted: send the id of a document from the manifest (documentId) instead of its text', {
    extensions: { code: 'FORBIDDEN', http: { status: 403 } },
  });
const noDocument = () =>
  new GraphQLError('Send a document (query) or the id of a trusted document (documentId)', {
    extensions: { code: 'BAD_USER_INPUT', http: { status: 400 } },
  });

/** The trusted-only rule: the error refusing `text`, or null when it may run. */
function refusal(trusted: TrustedDocuments, text: string): GraphQLError | null {
  return trusted.only && !trusted.trusts(text) ? untrustedDocument() : null;
}

/**
 * graphql-ws: the text a subscribe message runs, or the error that refuses
 * it, as over HTTP. A payload with a text runs that text (an id beside it is
 * ignored, as Yoga's plugin does); graphql-ws requires `query` to be a
 * string, so a client naming its document by id sends an empty `query`.
 * With `only`, the text must be a manifest entry: named by id, or sent in
 * full, character for character (harmless: the server trusts it anyway).
 */
export function documentFor(trusted: TrustedDocuments, payload: DocumentParams): string | GraphQLError {
  let text: string;
  if (typeof payload.query === 'string' && payload.query !== '') {
    text = payload.query;
  } else {
    const id = documentIdOf(payload);
    if (id === null) return noDocument();
    const found = trusted.text(id);
    if (found === null) return unknownDocumentId();
    text = found;
  }
  return refusal(trusted, text) ?? text;
}

/**
 * HTTP (POST and GET): Yoga's persisted-operations plugin turns an id into
 * its text, then the trusted-only rule looks at the text that will run. An
 * id in a GET request is the `documentId` search parameter, which Yoga's
 * GET parser does not keep.
 */
export function httpPlugins(trusted: TrustedDocuments): Plugin[] {
  const persisted = usePersistedOperations({
    // Arbitrary documents go on to the rule below, which refuses them when trusted-only.
    allowArbitraryOperations: true,
    extractPersistedOperationId: (params, request) =>
      documentIdOf({
        ...params,
        documentId:
          (params as DocumentParams).documentId ?? (request.method === 'GET' ? new URL(request.url).searchParams.get('documentId') : null),
      }),
    getPersistedOperation: (id) => trusted.text(id),
    customErrors: { notFound: unknownDocumentId, keyNotFound: noDocument },
  });
  const rule: Plugin = {
    onParams({ params }) {
      // Runs after the plugin above, so `query` is the text an id named.
      const refused = refusal(trusted, params.query ?? '');
      if (refused) throw refused;
    },
  };
  return [persisted, rule];
}
