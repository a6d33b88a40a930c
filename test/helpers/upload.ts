import type { GqlResult } from './app.ts';

export interface UploadPart {
  name: string;
  bytes: Uint8Array;
  /** The type the client declares; the server ignores it. */
  type?: string;
}

const UPLOAD = `mutation Upload($file: Upload!) {
  uploadFile(file: $file) { id name kind contentType size width height url urlExpiresAt attached thumbnails { width url } }
}`;

export interface UploadedAttachment {
  id: string;
  name: string;
  kind: string;
  contentType: string;
  size: number;
  width: number | null;
  height: number | null;
  url: string;
  urlExpiresAt: string;
  attached: boolean;
  thumbnails: { width: number; url: string }[];
}

/**
 * Sends a GraphQL multipart request (graphql-multipart-request-spec) the way
 * upload clients do: `operations`, `map`, then one part per file. `files`
 * maps variable paths (e.g. "variables.file") to parts.
 */
export async function multipart<T = unknown>(
  url: string,
  token: string | null,
  query: string,
  variables: Record<string, unknown>,
  files: Record<string, UploadPart>,
  options: { csrf?: boolean } = {},
): Promise<{ status: number; headers: Headers; body: GqlResult<T> }> {
  const form = new FormData();
  form.append('operations', JSON.stringify({ query, variables }));
  const paths = Object.keys(files);
  form.append('map', JSON.stringify(Object.fromEntries(paths.map((path, i) => [String(i), [path]]))));
  paths.forEach((path, i) => {
    const part = files[path]!;
    form.append(String(i), new Blob([part.bytes as Uint8Array<ArrayBuffer>], { type: part.type ?? 'application/octet-stream' }), part.name);
  });
  const response = await fetch(url, {
    method: 'POST',
    headers: { ...(options.csrf === false ? {} : { 'x-graphql-yoga-csrf': '1' }), ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: form,
  });
  const text = await response.text();
  let body: GqlResult<T>;
  try {
    body = JSON.parse(text) as GqlResult<T>;
  } catch {
    body = { errors: [{ message: text }] };
  }
  return { status: response.status, headers: response.headers, body };
}

/** uploadFile with one file: the result as a client sees it. */
export async function uploadFile(url: string, token: string | null, part: UploadPart, options: { csrf?: boolean } = {}) {
  const { body, status } = await multipart<{ uploadFile: UploadedAttachment }>(
    url,
    token,
    UPLOAD,
    { file: null },
    { 'variables.file': part },
    options,
  );
  return { ...body, status };
}

/** Downloads a file URL the API handed out (a path, resolved against the server). */
export async function download(serverUrl: string, fileUrl: string, init: RequestInit = {}) {
  const response = await fetch(new URL(fileUrl, serverUrl), init);
  return { status: response.status, headers: response.headers, bytes: new Uint8Array(await response.arrayBuffer()) };
}
