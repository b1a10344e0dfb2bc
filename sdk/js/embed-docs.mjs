// Appends a tool's WIT source to its component in a `wasmward-docs` custom
// section, from which wasmward takes the descriptions agents see
// (componentize-js drops WIT doc comments).
//
//   node embed-docs.mjs TOOL.wasm wit/world.wit
import { appendFileSync, readFileSync } from 'node:fs';

function leb128(n) {
  const out = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n) byte |= 0x80;
    out.push(byte);
  } while (n);
  return Buffer.from(out);
}

const [wasm, witPath] = process.argv.slice(2);
if (!wasm || !witPath) {
  console.error('usage: node embed-docs.mjs TOOL.wasm wit/world.wit');
  process.exit(2);
}
const name = Buffer.from('wasmward-docs');
const payload = Buffer.concat([leb128(name.length), name, readFileSync(witPath)]);
appendFileSync(wasm, Buffer.concat([Buffer.from([0]), leb128(payload.length), payload]));
console.log(`embedded ${witPath} in ${wasm}`);
