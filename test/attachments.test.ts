import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { startServer, type TestServer } from './helpers/app.ts';
import { createChannel, createUser, errorCode, ok, registerOrg, type TestOrg, type TestUser } from './helpers/fixtures.ts';
import * as files from './helpers/files.ts';
import { startS3Server, type LocalS3 } from './helpers/s3-server.ts';
import { download, multipart, uploadFile, type UploadPart } from './helpers/upload.ts';
import { rawId } from './helpers/messages.ts';
import { collect } from './helpers/subscription.ts';
import { wsClient } from './helpers/ws.ts';

// Uploads and downloads end to end, as clients do them: GraphQL multipart
// requests over HTTP, then the signed URLs the API hands out. Every case runs
// on both storage drivers (the filesystem, and S3 on a local s3rver).

const SEND = `mutation($i: SendMessageInput!) { sendMessage(input: $i) { id body attachments { id name kind contentType url } } }`;
const MESSAGE = `query($id: ID!) { message(id: $id) { body attachments { id name url thumbnails { width url } } } }`;

/** Every file in a directory tree, for "nothing was stored" checks on the fs driver. */
function filesUnder(dir: string): string[] {
  try {
    return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => statSync(join(dir, f)).isFile());
  } catch {
    return [];
  }
}

describe.each(['fs', 's3'] as const)('attachments on %s storage', (driver) => {
  let s: TestServer;
  let s3: LocalS3 | null = null;
  let org: TestOrg;
  let member: TestUser;
  let channel: string;

  /** What the storage holds now: files under the fs root, or the objects s3rver received and kept. */
  const storedCount = async () => {
    if (driver === 'fs') return filesUnder(join(s.dataDir, 'files')).length;
    const client = new S3Client({
      endpoint: s3!.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    });
    try {
      let count = 0;
      let token: string | undefined;
      do {
        const page = await client.send(new ListObjectsV2Command({ Bucket: s3!.bucket, ContinuationToken: token }));
        count += page.KeyCount ?? 0;
        token = page.NextContinuationToken;
      } while (token);
      return count;
    } finally {
      client.destroy();
    }
  };

  beforeAll(async () => {
    s3 = driver === 's3' ? await startS3Server() : null;
    const defaults = loadConfig({}, { jwtSecret: 'x'.repeat(16) });
    s = await startServer({
      ...(s3 ? { storage: s3.config } : {}),
      uploads: { ...defaults.uploads, maxFileBytes: 10 * 1024 * 1024, maxImagePixels: 50_000_000 },
    });
    org = await registerOrg(s);
    member = await createUser(s, org);
    channel = await createChannel(s, org.owner.token, { memberIds: [member.id] });
  });
  afterAll(async () => {
    await s?.stop();
    await s3?.stop();
  });

  const up = (part: UploadPart, token = org.owner.token) => uploadFile(s.url, token, part);

  it('accepts every allowed type, deciding the type from the content, never from the name or declared type', async () => {
    const cases: [string, Buffer, string, string][] = [
      ['photo.jpg', await files.jpeg(), 'IMAGE', 'image/jpeg'],
      ['a.png', await files.png(), 'IMAGE', 'image/png'],
      ['a.gif', await files.gif(), 'IMAGE', 'image/gif'],
      ['a.webp', await files.webp(), 'IMAGE', 'image/webp'],
      ['a.bmp', files.bmp(), 'IMAGE', 'image/bmp'],
      ['offer.pdf', files.pdf(), 'PDF', 'application/pdf'],
      ['a.doc', files.doc(), 'DOCUMENT', 'application/msword'],
      ['a.docx', await files.docx(), 'DOCUMENT', 'application/vnd.openxmlformats-officedocument.wordprocessingml.document'],
      ['a.xls', files.xls(), 'SPREADSHEET', 'application/vnd.ms-excel'],
      ['a.xlsx', await files.xlsx(), 'SPREADSHEET', 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet'],
      ['notes.txt', files.text(), 'TEXT', 'text/plain'],
      ['costs.csv', files.csv(), 'TEXT', 'text/csv'],
      // A PNG named .pdf is a PNG: stored, typed and named as one.
      ['scan.pdf', await files.png(), 'IMAGE', 'image/png'],
    ];
    for (const [name, bytes, kind, contentType] of cases) {
      const result = await up({ name, bytes, type: 'application/pdf' });
      const a = ok(result).uploadFile;
      expect([name, a.kind, a.contentType], name).toEqual([name, kind, contentType]);
      expect(a.attached).toBe(false);
      const got = await download(s.url, a.url);
      expect(got.status, name).toBe(200);
      expect(got.headers.get('content-type')).toBe(kind === 'TEXT' ? `${contentType}; charset=utf-8` : contentType);
      expect(got.headers.get('x-content-type-options')).toBe('nosniff');
      expect(got.headers.get('content-security-policy')).toContain('sandbox');
      expect(got.headers.get('content-disposition')).toMatch(kind === 'IMAGE' ? /^inline;/ : /^attachment;/);
      expect(got.bytes.byteLength).toBe(a.size);
      if (kind !== 'IMAGE') expect(Buffer.from(got.bytes).equals(bytes)).toBe(true);
    }
    const scan = ok(await up({ name: 'scan.pdf', bytes: await files.png() })).uploadFile;
    expect(scan.name).toBe('scan.pdf.png');
  });

  it('refuses every other type with BAD_USER_INPUT and stores nothing', async () => {
    const before = await storedCount();
    const refused: [string, Buffer][] = [
      ['page.jpg', files.html()],
      ['logo.svg', files.svgWithScript()],
      ['cat.jpg', await files.polyglotJpeg()],
      ['form.pdf', files.pdfWithJavaScript()],
      ['report.docx', await files.docm()],
      ['setup.exe', files.exe()],
      ['archive.zip', await files.zip()],
      ['data.xml', files.xml()],
      ['empty.txt', Buffer.alloc(0)],
      ['noise.bin', files.randomBinary()],
    ];
    for (const [name, bytes] of refused) {
      const result = await up({ name, bytes, type: 'image/jpeg' });
      expect(errorCode(result), name).toBe('BAD_USER_INPUT');
      expect(result.errors?.[0]?.message, name).not.toMatch(/\n\s+at /);
    }
    expect(await storedCount()).toBe(before);
  });

  it('refuses a file one byte over the limit while streaming, naming the limit, and stores nothing', async () => {
    const before = await storedCount();
    const result = await up({ name: 'big.pdf', bytes: files.bytesOfSize(10 * 1024 * 1024 + 1) });
    expect(result.status).toBe(413);
    expect(errorCode(result)).toBe('BAD_USER_INPUT');
    expect(result.errors?.[0]?.message).toContain('10485760');
    expect(result.errors?.[0]?.message).toContain('UPLOAD_MAX_FILE_BYTES');
    expect(await storedCount()).toBe(before);
    // Exactly at the limit is fine.
    const atLimit = files.pdfOf([files.bytesOfSize(10 * 1024 * 1024 - 400)]);
    expect(atLimit.byteLength).toBeLessThanOrEqual(10 * 1024 * 1024);
    ok(await up({ name: 'at-limit.pdf', bytes: atLimit }));
  });

  it('refuses a 100-megapixel decompression bomb from its header', async () => {
    const bomb = files.pngBomb(100);
    expect(bomb.byteLength).toBeLessThan(1024 * 1024);
    const result = await up({ name: 'bomb.png', bytes: bomb });
    expect(errorCode(result)).toBe('BAD_USER_INPUT');
    expect(result.errors?.[0]?.message).toMatch(/pixel/i);
  });

  it('strips EXIF (GPS) from what it serves and applies the orientation first', async () => {
    const photo = await files.jpegWithGps(80, 40);
    expect((await files.exifOf(photo))?.GPSInfo).toBeTruthy();
    const a = ok(await up({ name: 'guest.jpg', bytes: photo })).uploadFile;
    // Orientation 6: the served image is turned upright (40 × 80).
    expect([a.width, a.height]).toEqual([40, 80]);
    expect(a.thumbnails.map((t) => t.width)).toEqual([320, 1280]);
    for (const url of [a.url, ...a.thumbnails.map((t) => t.url)]) {
      const got = await download(s.url, url);
      expect(got.status).toBe(200);
      const meta = await sharp(Buffer.from(got.bytes)).metadata();
      expect(meta.exif, url).toBeUndefined();
      expect([meta.width, meta.height]).toEqual([40, 80]);
    }
    const thumb = await download(s.url, a.thumbnails[0]!.url);
    expect(thumb.headers.get('content-type')).toBe('image/webp');
  });

  it('keeps the original name as metadata only: no path, no bidi override, bounded', async () => {
    const cases: [string, RegExp][] = [
      ['../../etc/passwd', /^[^/\\]+$/],
      ['invoice\u202Efdp.exe', /^[^\u202A-\u202E\u2066-\u2069]+$/],
      ['a'.repeat(1000) + '.txt', /^a{1,251}\.txt$/],
    ];
    for (const [name, shape] of cases) {
      const a = ok(await up({ name, bytes: files.text() })).uploadFile;
      expect(a.name, JSON.stringify(name)).toMatch(shape);
      expect(Buffer.byteLength(a.name)).toBeLessThanOrEqual(255);
      const got = await download(s.url, a.url);
      expect(got.headers.get('content-disposition')).not.toMatch(/[\u202A-\u202E]|\.\.\//);
    }
    if (driver === 'fs') {
      // Stored under ids alone.
      for (const f of filesUnder(join(s.dataDir, 'files'))) expect(f).toMatch(/^[0-9a-f-]{36}\/[0-9a-f-]{36}\/(original|\d+)$/);
    }
  });

  it('requires the CSRF-prevention header on multipart requests', async () => {
    const result = await uploadFile(s.url, org.owner.token, { name: 'n.txt', bytes: files.text() }, { csrf: false });
    expect(result.status).toBe(403);
    expect(errorCode(result)).toBe('FORBIDDEN');
    expect(result.errors?.[0]?.message).toContain('x-graphql-yoga-csrf');
  });

  it('refuses an upload without a token, and more files in one request than allowed', async () => {
    // Refused from the headers, before the body is read.
    for (const token of [null, 'not-a-token']) {
      const anonymous = await uploadFile(s.url, token, { name: 'n.txt', bytes: files.text() });
      expect([anonymous.status, errorCode(anonymous)]).toEqual([401, 'UNAUTHENTICATED']);
    }
    const many = Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`variables.f${i}`, { name: `${i}.txt`, bytes: files.text() }]));
    const query = `mutation(${Object.keys(many)
      .map((_, i) => `$f${i}: Upload!`)
      .join(', ')}) { ${Object.keys(many)
      .map((_, i) => `a${i}: uploadFile(file: $f${i}) { id }`)
      .join(' ')} }`;
    const result = await multipart(s.url, org.owner.token, query, {}, many);
    expect(errorCode(result.body)).toBe('BAD_USER_INPUT');
    expect(result.body.errors?.[0]?.message).toContain('UPLOAD_MAX_FILES');
  });

  it('sends files with a message, body optional, and refuses reuse, foreign and unknown ids', async () => {
    const a = ok(await up({ name: 'a.png', bytes: await files.png() })).uploadFile;
    const b = ok(await up({ name: 'b.pdf', bytes: files.pdf() })).uploadFile;
    const sent = ok(await s.gql(SEND, { i: { channelId: channel, body: '  ', attachmentIds: [b.id, a.id] } }, org.owner.token));
    expect(sent.sendMessage.body).toBe('');
    expect(sent.sendMessage.attachments.map((x: { id: string }) => x.id)).toEqual([b.id, a.id]);
    // The member sees them, with URLs signed for the member.
    const seen = ok(await s.gql(MESSAGE, { id: sent.sendMessage.id }, member.token)).message;
    expect(seen.attachments.map((x: { name: string }) => x.name)).toEqual(['b.pdf', 'a.png']);
    expect((await download(s.url, seen.attachments[1].thumbnails[0].url)).status).toBe(200);
    // Used once.
    expect(errorCode(await s.gql(SEND, { i: { channelId: channel, body: 'again', attachmentIds: [a.id] } }, org.owner.token))).toBe(
      'CONFLICT',
    );
    // Another user's upload is not found, like an id that never existed.
    const mine = ok(await up({ name: 'm.txt', bytes: files.text() }, member.token)).uploadFile;
    expect(errorCode(await s.gql(SEND, { i: { channelId: channel, body: 'x', attachmentIds: [mine.id] } }, org.owner.token))).toBe(
      'NOT_FOUND',
    );
    const other = await registerOrg(s);
    const foreign = ok(await up({ name: 'f.txt', bytes: files.text() }, other.owner.token)).uploadFile;
    expect(errorCode(await s.gql(SEND, { i: { channelId: channel, body: 'x', attachmentIds: [foreign.id] } }, org.owner.token))).toBe(
      'NOT_FOUND',
    );
    // An id of another type is refused, not looked up.
    expect(errorCode(await s.gql(SEND, { i: { channelId: channel, body: 'x', attachmentIds: [channel] } }, org.owner.token))).toBe(
      'BAD_USER_INPUT',
    );
    // An empty message without files is still refused.
    expect(errorCode(await s.gql(SEND, { i: { channelId: channel, body: ' ', attachmentIds: [] } }, org.owner.token))).toBe(
      'BAD_USER_INPUT',
    );
    // The other organization's owner cannot open the file with their own grant, nor with a URL of ours.
    expect((await download(s.url, seen.attachments[0].url.replace(/u=[^&]+/, `u=${rawId(other.owner.id)}`))).status).toBe(404);
  });

  it('live: a sent message comes with its files, each subscriber getting URLs signed for them', async () => {
    const a = ok(await up({ name: 'live.png', bytes: await files.png() })).uploadFile;
    const lastSeq = ok(await s.gql(`query($c: ID!) { channel(id: $c) { lastSeq } }`, { c: channel }, org.owner.token)).channel
      .lastSeq as number;
    const query = `subscription($c: ID!, $after: Int) { channelEvents(channelId: $c, after: $after) {
      seq ... on MessageAddedEvent { message { attachments { name url } } } } }`;
    const clients = [wsClient(s.url, org.owner.token), wsClient(s.url, member.token)];
    try {
      const streams = clients.map((client) =>
        collect(
          client,
          query,
          { c: channel, after: lastSeq },
          (d: { channelEvents: { message?: { attachments: { name: string; url: string }[] } } }) => d.channelEvents,
        ),
      );
      ok(await s.gql(SEND, { i: { channelId: channel, body: 'live', attachmentIds: [a.id] } }, org.owner.token));
      const [ownerEvents, memberEvents] = await Promise.all(streams.map((stream) => stream.waitFor(1, 10_000)));
      const ownerFile = ownerEvents![0]!.message!.attachments[0]!;
      const memberFile = memberEvents![0]!.message!.attachments[0]!;
      expect([ownerFile.name, memberFile.name]).toEqual(['live.png', 'live.png']);
      expect(ownerFile.url).toContain(`u=${rawId(org.owner.id)}`);
      expect(memberFile.url).toContain(`u=${rawId(member.id)}`);
      expect((await download(s.url, memberFile.url)).status).toBe(200);
    } finally {
      await Promise.all(clients.map((c) => c.dispose()));
    }
  });

  it('two sends racing for one upload: exactly one attaches it', async () => {
    const a = ok(await up({ name: 'race.txt', bytes: files.text() })).uploadFile;
    const results = await Promise.all(
      [1, 2, 3].map((n) => s.gql(SEND, { i: { channelId: channel, body: `race ${n}`, attachmentIds: [a.id] } }, org.owner.token)),
    );
    expect(results.filter((r) => !r.errors)).toHaveLength(1);
    expect(results.filter((r) => r.errors).map(errorCode)).toEqual(['CONFLICT', 'CONFLICT']);
  });

  it('a removed member loses the file at once, and an old URL stops working after it expires', async () => {
    const a = ok(await up({ name: 'plan.pdf', bytes: files.pdf() })).uploadFile;
    const sent = ok(await s.gql(SEND, { i: { channelId: channel, body: 'plan', attachmentIds: [a.id] } }, org.owner.token));
    const leaver = await createUser(s, org);
    ok(
      await s.gql(
        `mutation($c: ID!, $u: [ID!]!) { addChannelMembers(channelId: $c, userIds: $u) { id } }`,
        { c: channel, u: [leaver.id] },
        org.owner.token,
      ),
    );
    const url = ok(await s.gql(MESSAGE, { id: sent.sendMessage.id }, leaver.token)).message.attachments[0].url as string;
    const ownerUrl = ok(await s.gql(MESSAGE, { id: sent.sendMessage.id }, org.owner.token)).message.attachments[0].url as string;
    expect((await download(s.url, url)).status).toBe(200);
    ok(
      await s.gql(
        `mutation($c: ID!, $u: ID!) { removeChannelMember(channelId: $c, userId: $u) { id } }`,
        { c: channel, u: leaver.id },
        org.owner.token,
      ),
    );
    expect((await download(s.url, url)).status).toBe(404);
    // Past the URL's lifetime even a reader's URL is refused (410: ask for a fresh one).
    s.app.services.clock.advance(20 * 60_000);
    expect((await download(s.url, ownerUrl)).status).toBe(410);
    expect((await download(s.url, url)).status).toBe(410);
    const fresh = ok(await s.gql(MESSAGE, { id: sent.sendMessage.id }, org.owner.token)).message.attachments[0].url as string;
    expect((await download(s.url, fresh)).status).toBe(200);
    // A tampered signature or variant is a plain 404.
    const signature = new URL(fresh, s.url).searchParams.get('s')!;
    const tampered = fresh.replace(`s=${signature}`, `s=${signature[0] === 'A' ? 'B' : 'A'}${signature.slice(1)}`);
    expect(tampered).not.toBe(fresh);
    expect((await download(s.url, tampered)).status).toBe(404);
    expect((await download(s.url, fresh.replace('/original?', '/320?'))).status).toBe(404);
  });

  it('takes concurrent uploads', async () => {
    const results = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => up({ name: `c${i}.png`, bytes: await files.png(300 + i, 200) })),
    );
    const ids = results.map((r) => ok(r).uploadFile.id);
    expect(new Set(ids).size).toBe(8);
    expect(results.map((r) => r.data!.uploadFile.width)).toEqual(Array.from({ length: 8 }, (_, i) => 300 + i));
  });

  // Last: it stops the storage server.
  it.runIf(driver === 's3')('storage down: an upload is SERVICE_UNAVAILABLE, retryable, and no stack trace', async () => {
    await s3!.stop();
    const result = await up({ name: 'late.txt', bytes: files.text() });
    expect(errorCode(result)).toBe('SERVICE_UNAVAILABLE');
    expect(result.errors?.[0]?.extensions?.service).toBe('storage');
    expect(result.errors?.[0]?.message).toBe('File storage is unavailable; retry shortly');
    // Chat goes on.
    ok(await s.gql(SEND, { i: { channelId: channel, body: 'still here' } }, org.owner.token));
  });
});
