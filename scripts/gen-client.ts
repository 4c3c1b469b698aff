// `npm run gen:client`: regenerates src/cli/api-types.ts, the TypeScript
// types of the API (paths, operations, schemas, the Error body) that
// openapi-typescript derives from the OpenAPI document the server serves.
// `--check` writes nothing and exits 1 when the committed file is stale.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import openapiTS, { astToString } from 'openapi-typescript';
import { buildApi } from '../src/api/app.js';
import { createCtx } from '../src/core/context.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';

export const API_TYPES = join(import.meta.dirname, '../src/cli/api-types.ts');

const HEADER = `// The API's types, generated from its OpenAPI document by openapi-typescript:
// do not edit; \`npm run gen:client\` rewrites it (test/integration/openapi.test.ts
// fails when it is stale).
`;

/** The OpenAPI document `GET /openapi.json` answers, from an API on a throwaway store. */
export async function openApiDocument(): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'weft-openapi-'));
  const store = await SqliteStore.open(join(dir, 'weft.db'));
  try {
    const app = await buildApi(createCtx(store));
    await app.ready();
    const doc = app.swagger() as unknown as Record<string, unknown>;
    await app.close();
    return doc;
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The text of src/cli/api-types.ts for `doc`. */
export async function apiTypes(doc: Record<string, unknown>): Promise<string> {
  const ast = await openapiTS(JSON.parse(JSON.stringify(doc)), { alphabetize: true });
  return HEADER + astToString(ast);
}

if (process.argv[1] && import.meta.filename === process.argv[1]) {
  const text = await apiTypes(await openApiDocument());
  if (process.argv.includes('--check')) {
    const now = readFileSync(API_TYPES, 'utf8');
    if (now !== text) {
      process.stderr.write('src/cli/api-types.ts is stale: run npm run gen:client\n');
      process.exit(1);
    }
  } else {
    writeFileSync(API_TYPES, text);
    process.stdout.write(`wrote ${API_TYPES}\n`);
  }
}
