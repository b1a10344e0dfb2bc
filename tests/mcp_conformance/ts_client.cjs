// Drives `wasmward serve` with the official TypeScript MCP SDK
// (@modelcontextprotocol/sdk, the exact version in package.json here).
// Run by tests/mcp_conformance.rs:
//
//   node ts_client.cjs --modules DIR/node_modules --plan plan.json stdio --bin wasmward --config wasmward.toml [--listen ADDR]
//   node ts_client.cjs --modules DIR/node_modules --plan plan.json http --url http://127.0.0.1:PORT/mcp --token T [--bad-token]
//
// It lists the tools, calls every call of the plan through Client.callTool
// (which validates structuredContent against the listed outputSchema and
// throws when they disagree), checks each result itself as well (JSON
// Schema 2020-12 with Ajv), and prints one JSON line per event. The Rust
// test asserts on those lines; this script judges nothing but its own
// crashes. Tools are called by the name the listing returns: a plan names
// the canonical function (`text.analysis.word-stats`) and the listed name is
// found by comparing names without their separators.
'use strict';
const path = require('node:path');
const { createRequire } = require('node:module');

function parseArgs(argv) {
  const a = { flags: {} };
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i];
    if (x === 'stdio' || x === 'http') a.transport = x;
    else if (x === '--bad-token') a.flags.badToken = true;
    else if (x.startsWith('--')) a.flags[x.slice(2)] = argv[++i];
    else throw new Error(`unexpected argument ${x}`);
  }
  return a;
}

const args = parseArgs(process.argv.slice(2));
const req = createRequire(path.join(path.resolve(args.flags.modules), 'resolve-from-here.js'));
const { Client } = req('@modelcontextprotocol/sdk/client/index.js');
const { StdioClientTransport } = req('@modelcontextprotocol/sdk/client/stdio.js');
const { StreamableHTTPClientTransport } = req('@modelcontextprotocol/sdk/client/streamableHttp.js');
const sdkVersion = JSON.parse(require('node:fs').readFileSync(path.join(path.resolve(args.flags.modules), '@modelcontextprotocol/sdk/package.json'), 'utf8')).version;
const Ajv2020 = req('ajv/dist/2020').default;
const plan = JSON.parse(require('node:fs').readFileSync(args.flags.plan, 'utf8'));

const ajv = new Ajv2020({ strict: false, allErrors: true });
const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const key = (name) => name.toLowerCase().replace(/[._]/g, '');
const errText = (e) => (e && e.message ? e.message : String(e));

function compile(schema) {
  try {
    return { validate: ajv.compile(schema) };
  } catch (e) {
    return { error: errText(e) };
  }
}

function check(compiled, value) {
  if (compiled.error) return `schema does not compile: ${compiled.error}`;
  if (compiled.validate(value)) return null;
  return ajv.errorsText(compiled.validate.errors);
}

function transport(bearer) {
  if (args.transport === 'stdio') {
    const cmdArgs = ['serve', '--stdio', '--config', args.flags.config];
    if (args.flags.listen) cmdArgs.push('--listen', args.flags.listen);
    return new StdioClientTransport({ command: args.flags.bin, args: cmdArgs, stderr: 'ignore' });
  }
  return new StreamableHTTPClientTransport(new URL(args.flags.url), {
    requestInit: { headers: { Authorization: `Bearer ${bearer}` } },
  });
}

async function main() {
  const client = new Client({ name: 'wasmward-conformance-ts', version: '1.0.0' });
  await client.connect(transport(args.flags.token));
  emit({ event: 'initialized', sdk: `typescript ${sdkVersion}`, server: client.getServerVersion() });

  const tools = [];
  let cursor;
  do {
    const page = await client.listTools(cursor ? { cursor } : undefined);
    tools.push(...page.tools);
    cursor = page.nextCursor;
  } while (cursor);
  // Each listTools call replaces the output validators Client.callTool
  // uses with those of its page; wasmward lists every tool on one page.
  const byKey = new Map();
  const schemas = new Map();
  for (const t of tools) {
    const input = compile(t.inputSchema);
    const output = t.outputSchema ? compile(t.outputSchema) : { error: 'no outputSchema' };
    schemas.set(t.name, { input, output });
    if (!byKey.has(key(t.name))) byKey.set(key(t.name), []);
    byKey.get(key(t.name)).push(t.name);
    emit({ event: 'tool', name: t.name, input_schema_error: input.error || null, output_schema_error: output.error || null });
  }

  const called = new Set();
  for (const c of plan.calls) {
    let name = c.name;
    if (!c.verbatim) {
      const found = byKey.get(key(c.name)) || [];
      if (found.length !== 1) {
        emit({ event: 'call', plan: c.name, id: c.id, client_error: `the listing has ${found.length} tools for ${c.name}` });
        continue;
      }
      name = found[0];
      called.add(name);
    }
    const s = schemas.get(name);
    const argsError = s ? check(s.input, c.args) : null;
    if (c.decide) emit({ event: 'await_approval', decision: c.decide, plan: c.name, id: c.id });
    const out = { event: 'call', plan: c.name, id: c.id, listed: name, args_error: argsError };
    try {
      const r = await client.callTool({ name, arguments: c.args }, undefined, { timeout: 120000 });
      out.is_error = r.isError === true;
      out.text = (r.content || []).filter((b) => b.type === 'text').map((b) => b.text).join('\n');
      out.structured = r.structuredContent === undefined ? null : r.structuredContent;
      out.has_structured = r.structuredContent !== undefined;
      out.meta = r._meta === undefined ? null : r._meta;
      if (!out.is_error) {
        out.own_schema_error = !s ? 'not listed' : !out.has_structured ? 'no structuredContent' : check(s.output, r.structuredContent);
      }
    } catch (e) {
      out.client_error = `${e.constructor && e.constructor.name}: ${errText(e)}`;
    }
    emit(out);
  }
  emit({ event: 'coverage', uncalled: tools.map((t) => t.name).filter((n) => !called.has(n)) });
  await client.close();

  if (args.flags.badToken) {
    const bad = new Client({ name: 'wasmward-conformance-ts-bad', version: '1.0.0' });
    try {
      await bad.connect(transport('ww1.not-a-token'));
      await bad.listTools();
      emit({ event: 'unauthorized', error: null });
    } catch (e) {
      emit({ event: 'unauthorized', error: `${e.constructor && e.constructor.name}: ${errText(e)}`, code: e.code === undefined ? null : e.code });
    }
    await bad.close().catch(() => {});
  }
  emit({ event: 'done' });
}

main().then(
  () => process.exit(0),
  (e) => {
    emit({ event: 'fatal', error: errText(e), stack: e && e.stack });
    process.exit(1);
  },
);
