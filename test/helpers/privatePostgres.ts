/**
 * A PostgreSQL server of the test's own, for fault tests that stop and restart it (the shared
 * server at 127.0.0.1:5432 must never be stopped). initdb into a temporary directory, one
 * free port, trust authentication on 127.0.0.1 only; as root the server runs as the
 * `postgres` OS user (PostgreSQL refuses to run as root).
 *
 * The binaries are found under PORTCULLIS_TEST_PG_BIN, /usr/lib/postgresql/<version>/bin or
 * the PATH. Without them the suite is skipped with the reason printed, except under CI=true
 * where that is a failure.
 */
import { execFile, execFileSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { freePort } from "./net.js";
import { IN_CI } from "./postgres.js";

const execFileP = promisify(execFile);

/** The directory holding initdb, pg_ctl and postgres, or null. */
export function postgresBinDir(): string | null {
  const candidates: string[] = [];
  if (process.env.PORTCULLIS_TEST_PG_BIN) candidates.push(process.env.PORTCULLIS_TEST_PG_BIN);
  const base = "/usr/lib/postgresql";
  if (existsSync(base)) {
    const versions = readdirSync(base).sort((a, b) => Number(b) - Number(a));
    for (const v of versions) candidates.push(join(base, v, "bin"));
  }
  for (const dir of (process.env.PATH ?? "").split(":")) if (dir) candidates.push(dir);
  return candidates.find((d) => existsSync(join(d, "initdb")) && existsSync(join(d, "pg_ctl"))) ?? null;
}

/** The `skip` option for a suite that needs a private server: the reason outside CI, never under CI=true. */
export function privatePostgresSkip(): string | false {
  let problem: string | null = null;
  if (postgresBinDir() === null) problem = "PostgreSQL server binaries (initdb, pg_ctl) not found";
  else if (userInfo().uid === 0) {
    // PostgreSQL refuses to run as root: the server runs as the postgres OS user.
    try {
      execFileSync("id", ["-u", "postgres"], { stdio: "ignore" });
      execFileSync("runuser", ["--version"], { stdio: "ignore" });
    } catch {
      problem = "running as root without a postgres OS user or runuser";
    }
  }
  if (problem) console.log(`# ${problem}${IN_CI ? " (CI=true: failing)" : " (skipping)"}`);
  return problem !== null && !IN_CI ? problem : false;
}

export interface PrivatePostgres {
  port: number;
  /** postgres://postgres@127.0.0.1:<port>/<database> */
  url(database?: string): string;
  /** pg_ctl stop -m fast: every session is terminated (57P01), as in a restart. */
  stop(): Promise<void>;
  /** pg_ctl start -w: returns once the server accepts connections. */
  start(): Promise<void>;
  /** Stops the server (if running) and deletes its directory. */
  destroy(): Promise<void>;
}

/** Runs a PostgreSQL binary, as the postgres OS user when this process is root. */
async function runPg(bin: string, args: string[]): Promise<string> {
  const asRoot = userInfo().uid === 0;
  const [cmd, argv] = asRoot ? ["runuser", ["-u", "postgres", "--", bin, ...args]] : [bin, args];
  const { stdout } = await execFileP(cmd, argv, { timeout: 60_000 });
  return stdout;
}

/** initdb, then start; the `portcullis` database exists. */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = postgresBinDir();
  if (bin === null) throw new Error("PostgreSQL server binaries not found");
  const root = mkdtempSync(join(tmpdir(), "portcullis-pg-"));
  const data = join(root, "data");
  if (userInfo().uid === 0) {
    const { uid, gid } = await lookupPostgresUser();
    chownSync(root, uid, gid);
  }
  chmodSync(root, 0o700);
  await runPg(join(bin, "initdb"), ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]);
  const port = await freePort();
  const options = [
    `-p ${port}`,
    "-c listen_addresses=127.0.0.1",
    `-c unix_socket_directories=${root}`,
    "-c fsync=off",
    "-c shared_buffers=16MB",
    "-c max_connections=60",
  ].join(" ");
  let running = false;
  const start = async () => {
    await runPg(join(bin, "pg_ctl"), [
      "start",
      "-w",
      "-D",
      data,
      "-l",
      join(root, "server.log"),
      "-o",
      options,
    ]);
    running = true;
  };
  const stop = async () => {
    await runPg(join(bin, "pg_ctl"), ["stop", "-w", "-m", "fast", "-D", data]);
    running = false;
  };
  const url = (database = "portcullis") => `postgres://postgres@127.0.0.1:${port}/${database}`;
  await start();
  const client = new pg.Client({ connectionString: url("postgres") });
  await client.connect();
  try {
    await client.query("CREATE DATABASE portcullis");
  } finally {
    await client.end();
  }
  return {
    port,
    url,
    start,
    stop,
    async destroy() {
      if (running) await stop().catch(() => {});
      rmSync(root, { recursive: true, force: true });
    },
  };
}

async function lookupPostgresUser(): Promise<{ uid: number; gid: number }> {
  const { stdout: uid } = await execFileP("id", ["-u", "postgres"]);
  const { stdout: gid } = await execFileP("id", ["-g", "postgres"]);
  return { uid: Number(uid.trim()), gid: Number(gid.trim()) };
}
