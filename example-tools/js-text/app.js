// js-text: the wasmward example tool in JavaScript (see wit/world.wit).
// Built with componentize-js; WIT names become camelCase, variants are
// `{ tag, val }`, enums are strings, and a thrown value becomes the `err`
// of a `result`.

import { getDirectories } from 'wasi:filesystem/preopens@0.2.12';
import { log } from 'wasmward:tool/log@0.1.0';

export function greet(name) {
  return `Hello, ${name}!`;
}

export function wordStats(text) {
  const words = text.split(/\s+/).filter((w) => w.length > 0);
  let longestWord;
  const counts = new Map();
  for (const w of words) {
    if (longestWord === undefined || [...w].length > [...longestWord].length) longestWord = w;
    const k = w.toLowerCase();
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  let mostCommon;
  for (const [k, n] of counts) {
    if (mostCommon === undefined || n > mostCommon[1]) mostCommon = [k, n];
  }
  const lines = text.length === 0 ? 0 : text.replace(/\n$/, '').split('\n').length;
  return { words: words.length, lines, chars: [...text].length, longestWord, mostCommon };
}

export function changeCase(words, style) {
  const title = (w) => w.charAt(0).toUpperCase() + w.slice(1).toLowerCase();
  const change = { upper: (w) => w.toUpperCase(), lower: (w) => w.toLowerCase(), title }[style];
  if (!change) throw `unknown case style ${style}`;
  return words.map(change);
}

export function area(s) {
  switch (s.tag) {
    case 'point':
      return 0;
    case 'circle':
      if (s.val < 0) throw `negative radius ${s.val}`;
      return Math.PI * s.val * s.val;
    case 'rectangle': {
      const [w, h] = s.val;
      if (w < 0 || h < 0) throw `negative size ${w} x ${h}`;
      return w * h;
    }
    default:
      throw `unknown shape ${s.tag}`;
  }
}

// `fetch` is StarlingMonkey's, over wasi:http/outgoing-handler. An async
// export is run to completion before the call returns.
export async function fetch(url, maxBytes) {
  const cap = maxBytes ?? 65536;
  let resp;
  try {
    resp = await globalThis.fetch(url);
  } catch (e) {
    throw `fetch ${url} failed: ${e?.message ?? e}`;
  }
  const bytes = new Uint8Array(await resp.arrayBuffer());
  const body = new TextDecoder().decode(bytes.subarray(0, cap));
  log('info', 'fetched', [['url', url], ['status', String(resp.status)]]);
  return {
    status: resp.status,
    contentType: resp.headers.get('content-type') ?? undefined,
    body,
    truncated: bytes.length > cap,
  };
}

// There is no `fs` in StarlingMonkey: files are reached through the
// wasi:filesystem preopens directly.
export function writeFile(path, contents) {
  const dirs = getDirectories();
  const hit = dirs
    .filter(([, mount]) => path === mount || path.startsWith(mount.endsWith('/') ? mount : `${mount}/`))
    .sort((a, b) => b[1].length - a[1].length)[0];
  if (!hit) throw `cannot write ${path}: no mount covers it (mounts: ${dirs.map(([, m]) => m).join(', ') || 'none'})`;
  const [dir, mount] = hit;
  const rel = path.slice(mount.length).replace(/^\/+/, '') || '.';
  const data = new TextEncoder().encode(contents);
  try {
    const file = dir.openAt({}, rel, { create: true, truncate: true }, { write: true });
    const written = file.write(data, 0n);
    return BigInt(written);
  } catch (e) {
    throw `cannot write ${path}: ${e?.payload ?? e?.message ?? e}`;
  }
}

// JS has no raw sockets here: StarlingMonkey wraps none, and componentize-js
// 0.23's bindings for wasi:sockets cannot pass the `network` resource
// (its interface has no functions, so its class is never generated). A
// connection is opened with an HTTP HEAD request instead.
export async function connect(host, port) {
  const authority = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  try {
    const resp = await globalThis.fetch(`http://${authority}/`, { method: 'HEAD' });
    return `connected to ${authority} (HTTP ${resp.status})`;
  } catch (e) {
    throw `cannot connect to ${authority}: ${e?.message ?? e}`;
  }
}
