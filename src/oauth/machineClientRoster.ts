/**
 * The in-memory view of machine clients (./machineClients.ts) that the request path reads
 * to decide whether a client_credentials access token may still be used. Such a token has
 * no grant (RFC 6749 §4.4): its liveness is its client's. The view reloads whenever the
 * store's change feed (Store#watchKeys: SQLite data_version polling, PostgreSQL
 * LISTEN/NOTIFY) reports a credential change made anywhere, e.g. `portcullis clients revoke`
 * in another process, and the request that notices the change waits for the reload, so a
 * revoked client's cached token is refused from the very next request. While changes cannot
 * be observed, every machine client is refused: fail closed (as ../authn/keyring.ts does).
 */
import type { Kysely } from "kysely";
import type { KeyWatch, Store } from "../store/types.js";
import type { OAuthDatabase } from "./database.js";
import { listMachineClients, type MachineClient, machineClientProblem } from "./machineClients.js";

export type MachineClientStatus = { ok: true; client: MachineClient } | { ok: false; reason: string };

export class MachineClientRoster {
  private clients = new Map<string, MachineClient>();
  private stale = true;
  private reloading: Promise<void> | null = null;
  private watch: KeyWatch | null = null;

  /** `onChange` also hears every credential change the feed reports (one feed per server). */
  constructor(
    private readonly store: Store,
    private readonly db: Kysely<OAuthDatabase>,
    private readonly onChange: () => void = () => {},
  ) {}

  async start(): Promise<void> {
    this.watch = this.store.watchKeys(() => {
      this.stale = true;
      this.onChange();
    });
    await this.reload();
    for (let i = 0; i < 100 && !this.watch.healthy(); i++) await new Promise((r) => setTimeout(r, 50));
  }

  async close(): Promise<void> {
    await this.watch?.close();
    this.watch = null;
  }

  private reload(): Promise<void> {
    if (this.reloading) return this.reloading;
    this.stale = false;
    this.reloading = listMachineClients(this.db)
      .then((list) => {
        this.clients = new Map(list.map((c) => [c.clientId, c]));
      })
      .catch((err: unknown) => {
        this.stale = true;
        throw err;
      })
      .finally(() => {
        this.reloading = null;
      });
    return this.reloading;
  }

  /** Synchronous (undefined) in the steady state; a promise right after a change. Rejects if the store fails. */
  refresh(): Promise<void> | undefined {
    this.watch?.poll();
    if (this.stale || this.reloading) return this.reload();
    return undefined;
  }

  /** False while credential changes cannot be observed: tokens must then be refused. */
  feedHealthy(): boolean {
    return this.watch?.healthy() ?? false;
  }

  /** Call refresh() first. */
  status(clientId: string, now: number = Date.now()): MachineClientStatus {
    if (!(this.watch?.healthy() ?? false)) {
      return { ok: false, reason: "revocation state unknown (store change feed down): failing closed" };
    }
    const client = this.clients.get(clientId);
    if (client === undefined) return { ok: false, reason: `unknown machine client ${clientId}` };
    const problem = machineClientProblem(client, now);
    return problem === null ? { ok: true, client } : { ok: false, reason: problem };
  }
}
