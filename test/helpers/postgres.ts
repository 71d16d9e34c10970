/**
 * PostgreSQL for tests: a throwaway database per suite so parallel runs never see each
 * other's rows or notifications. PORTCULLIS_TEST_PG_URL overrides the default server.
 * Under CI=true an unreachable server fails the suite; elsewhere it is skipped with the reason.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";

export const PG_URL = process.env.PORTCULLIS_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
export const IN_CI = process.env.CI === "true";

async function run(url: string, query: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(query);
  } finally {
    await client.end();
  }
}

export interface TestDatabase {
  url: string;
  /** Runs one statement in the test database. */
  admin(query: string): Promise<void>;
  drop(): Promise<void>;
}

/** A new empty database, or a copy of `template` (which must have no open connection). */
export async function createTestDatabase(template?: TestDatabase): Promise<TestDatabase> {
  const name = `portcullis_test_${randomBytes(6).toString("hex")}`;
  const from = template === undefined ? "" : ` TEMPLATE ${new URL(template.url).pathname.slice(1)}`;
  await run(PG_URL, `CREATE DATABASE ${name}${from}`);
  const url = new URL(PG_URL);
  url.pathname = `/${name}`;
  const dbUrl = url.toString();
  return {
    url: dbUrl,
    admin: (query) => run(dbUrl, query),
    drop: () => run(PG_URL, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
  };
}

/** Why PostgreSQL tests cannot run here, or null when they can. */
export async function postgresUnavailable(): Promise<string | null> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2_000 });
  client.on("error", () => {});
  try {
    await client.connect();
    await client.query("SELECT 1");
    return null;
  } catch (err) {
    return `PostgreSQL not reachable at ${PG_URL}: ${err instanceof Error ? err.message : String(err)}`;
  } finally {
    await client.end().catch(() => {});
  }
}

/** The `skip` option for a PostgreSQL suite: the reason outside CI, never under CI=true. */
export async function postgresSkip(): Promise<string | false> {
  const problem = await postgresUnavailable();
  if (problem) console.log(`# ${problem}${IN_CI ? " (CI=true: failing)" : " (skipping)"}`);
  return problem !== null && !IN_CI ? problem : false;
}
