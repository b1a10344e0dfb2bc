// wasmward's JavaScript SDK: tell a policy denial from an ordinary failure,
// and make HTTP requests whose refusal can be recognised. Import it from a
// tool's app.js: `import { isDenied, request } from './wasmward.js';`
//
// componentize-js delivers a failed WASI or wasmward call as a thrown
// `Error` whose `payload` is the WIT error value: a wasi:filesystem
// `error-code` ('access', 'read-only', 'not-permitted', ...), or the
// wasmward:tool/process `error` variant ({ tag: 'denied', val: rule }).
import { handle } from 'wasi:http/outgoing-handler@0.2.12';
import { Fields, OutgoingBody, OutgoingRequest } from 'wasi:http/types@0.2.12';

// What the sandbox answers when the policy refuses (host/src/sandbox):
const FS_DENIED = new Set(['access', 'read-only', 'not-permitted']); // wasi:filesystem error-code
const SOCKET_DENIED = 'access-denied'; // wasi:sockets error-code
// wasi:http error-code: a host off `allowed_network_hosts`, or a private or
// loopback address the policy does not allow.
const HTTP_DENIED = new Set(['HTTP-request-denied', 'destination-IP-prohibited']);

/**
 * True when `err` is the sandbox refusing an operation under the operator's
 * policy: a filesystem error `access`/`read-only`/`not-permitted`, a
 * wasi:http `HTTP-request-denied` (or `destination-IP-prohibited`) from
 * `request`, a sockets `access-denied`, or the process `denied` variant.
 * The host also writes an audit row for each denial.
 *
 * The global `fetch` cannot be told apart: StarlingMonkey turns every
 * failure, a denial included, into `TypeError: NetworkError when attempting
 * to fetch resource`; use `request` when the difference matters.
 *
 * Inside a granted mount, a file the host itself forbids (its own file
 * permissions) also fails with `access`: that is indistinguishable here.
 */
export function isDenied(err) {
  if (err === null || typeof err !== 'object') return false;
  if (err instanceof HttpError) return HTTP_DENIED.has(err.code?.tag);
  if (!Object.prototype.hasOwnProperty.call(err, 'payload')) return false;
  const p = err.payload;
  if (typeof p === 'string') return FS_DENIED.has(p) || p === SOCKET_DENIED;
  return p !== null && typeof p === 'object' && (p.tag === 'denied' || HTTP_DENIED.has(p.tag));
}

/** A failed `request`: `code` is the wasi:http `error-code` ({ tag, val }). */
export class HttpError extends Error {
  constructor(url, code) {
    const detail = code.val === undefined ? '' : ` ${JSON.stringify(code.val, (_, v) => (typeof v === 'bigint' ? String(v) : v))}`;
    super(`${url}: ${code.tag}${detail}${HTTP_DENIED.has(code.tag) ? ' (refused by the wasmward policy)' : ''}`);
    this.name = 'HttpError';
    this.code = code;
  }
}

const dispose = Symbol.dispose ?? Symbol.for('dispose');
const drop = (resource) => resource?.[dispose]?.();
const encoder = new TextEncoder();

/**
 * An HTTP request over wasi:http, for when a refusal must be recognised
 * (`fetch` hides it). Resolves to `{ status, headers, body, text(), json() }`
 * (`headers`: [name, value] pairs, `body`: Uint8Array) for any status;
 * rejects with an `HttpError` when no response came back, e.g. a denial.
 *
 *   const resp = await request('https://api.example.com/items', {
 *     method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
 */
export async function request(url, { method = 'GET', headers = {}, body } = {}) {
  const u = new URL(url);
  const fields = Fields.fromList(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), encoder.encode(String(v))]));
  const req = new OutgoingRequest(fields);
  const m = method.toUpperCase();
  const known = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'];
  req.setMethod(known.includes(m) ? { tag: m.toLowerCase() } : { tag: 'other', val: m });
  req.setScheme(u.protocol === 'https:' ? { tag: 'HTTPS' } : u.protocol === 'http:' ? { tag: 'HTTP' } : { tag: 'other', val: u.protocol.slice(0, -1) });
  req.setAuthority(u.host);
  req.setPathWithQuery(`${u.pathname}${u.search}`);
  const outBody = req.body();
  let future;
  try {
    future = handle(req, undefined);
  } catch (e) {
    throw new HttpError(url, e?.payload ?? { tag: 'internal-error', val: String(e?.message ?? e) });
  }
  const bytes = body === undefined ? undefined : typeof body === 'string' ? encoder.encode(body) : new Uint8Array(body);
  const out = outBody.write();
  for (let at = 0; bytes && at < bytes.length; at += 4096) {
    out.blockingWriteAndFlush(bytes.subarray(at, at + 4096));
  }
  drop(out);
  OutgoingBody.finish(outBody, undefined);
  future.subscribe().block();
  const got = future.get(); // { tag: 'ok', val: { tag: 'ok' | 'err', val } }
  if (got?.val?.tag === 'err') throw new HttpError(url, got.val.val);
  const resp = got.val.val;
  const status = resp.status();
  const respHeaders = resp.headers().entries().map(([k, v]) => [k, new TextDecoder().decode(v)]);
  const incoming = resp.consume();
  const stream = incoming.stream();
  const chunks = [];
  let total = 0;
  for (;;) {
    let chunk;
    try {
      chunk = stream.blockingRead(65536n);
    } catch (e) {
      if (e?.payload?.tag === 'closed') break;
      throw e;
    }
    chunks.push(chunk);
    total += chunk.length;
  }
  drop(stream);
  const all = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    all.set(c, off);
    off += c.length;
  }
  return {
    status,
    headers: respHeaders,
    body: all,
    text: () => new TextDecoder().decode(all),
    json: () => JSON.parse(new TextDecoder().decode(all)),
  };
}
