// The official AsyncAPI parser (@asyncapi/parser) on one document: prints {valid, diagnostics} as JSON.
// tests/test_asyncapi.py runs it on docs/asyncapi.yaml; `make test` installs it (`npm ci` in this folder).
import { Parser } from '@asyncapi/parser';
import { readFileSync } from 'node:fs';
const parser = new Parser();
const { document, diagnostics } = await parser.parse(readFileSync(process.argv[2], 'utf8'));
const out = diagnostics.map(d => ({ severity: d.severity, code: d.code, message: d.message, path: d.path.join('.') }));
console.log(JSON.stringify({ valid: document !== undefined, diagnostics: out }, null, 1));
