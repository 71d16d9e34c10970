/**
 * The in-memory view of machine clients (./machineClients.ts) that the request path reads
 * to decide whether a client_credentials access token may still be used. Such a token has
 * no grant (RFC 6749 §4.4): its liveness is its client's. The view is a FeedCache
 * (../store/feedCache.ts) that reloads whenever the store's change feed (SQLite data_version
 * polling, PostgreSQL LISTEN/NOTIFY) reports a credential change made anywhere, e.g. `portcullis clients revoke`
 * in another process, and the request that notices the change waits for the reload, so a
 * revoked client's cached token is refused from the very next request. While changes cannot
 * be observed, every machine client is refused: fail closed (as ../authn/keyring.ts does).
 */
import type { Kysely } from "kysely";
import { FeedCache } from "../store/feedCache.js";
import type { Store } from "../store/types.js";
import type { OAuthDatabase } from "./database.js";
import { listMachineClients, type MachineClient, machineClientProblem } from "./machineClients.js";

export type MachineClientStatus = { ok: true; client: MachineClient } | { ok: false; reason: string };

export class MachineClientRoster {
  private readonly clients: FeedCache<Map<string, MachineClient>>;

  /** `onChange` also hears every credential change the feed reports (one feed per server). */
  constructor(store: Store, db: Kysely<OAuthDatabase>, onChange: () => void = () => {}) {
    this.clients = new FeedCache(store, new Map(), {
      load: async () => new Map((await listMachineClients(db)).map((c) => [c.clientId, c])),
      onChange,
    });
  }

  start(): Promise<void> {
    return this.clients.start();
  }

  close(): Promise<void> {
    return this.clients.close();
  }

  /** Synchronous (undefined) in the steady state; a promise right after a change. Rejects if the store fails. */
  refresh(): Promise<void> | undefined {
    return this.clients.refresh();
  }

  /** False while credential changes cannot be observed: tokens must then be refused. */
  feedHealthy(): boolean {
    return this.clients.healthy();
  }

  /** Call refresh() first. */
  status(clientId: string, now: number = Date.now()): MachineClientStatus {
    if (!this.clients.healthy()) {
      return { ok: false, reason: "revocation state unknown (store change feed down): failing closed" };
    }
    const client = this.clients.value.get(clientId);
    if (client === undefined) return { ok: false, reason: `unknown machine client ${clientId}` };
    const problem = machineClientProblem(client, now);
    return problem === null ? { ok: true, client } : { ok: false, reason: problem };
  }
}
