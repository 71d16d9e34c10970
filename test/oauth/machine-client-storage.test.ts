/**
 * Machine clients in the store (migration 003): the client_secret_basic secret never sits in
 * the database in plaintext (it is sealed; oidc-provider gets it back only through the
 * adapter), a revoked client is "not found" for oidc-provider, and a revocation made through
 * another connection (the CLI is another process) reaches a running gateway's roster through
 * the store's change feed — on SQLite and PostgreSQL.
 */
import assert from "node:assert/strict";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { REPLAY_DETECTION_MODEL, ReplayDetected, sqlAdapter } from "../../src/oauth/adapter.js";
import { oauthDatabase } from "../../src/oauth/database.js";
import { MachineClientRoster } from "../../src/oauth/machineClientRoster.js";
import {
  createMachineClient,
  MachineClientError,
  parsePublicKeys,
  revokeMachineClient,
  withMachineClients,
} from "../../src/oauth/machineClients.js";
import { deriveOAuthKey } from "../../src/oauth/secrets.js";
import { artefactKeys } from "../../src/oauth/storedArtefacts.js";
import { openStore } from "../../src/store/open.js";
import type { Store } from "../../src/store/types.js";
import { createTestDatabase, postgresSkip } from "../helpers/postgres.js";

const SEAL_KEY = deriveOAuthKey(randomBytes(32), "client-secret-encryption");
const ARTEFACT_KEYS = artefactKeys(randomBytes(32));
const inAWeek = () => new Date(Date.now() + 7 * 86_400_000);

async function until(cond: () => boolean | Promise<boolean>, ms = 2_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

function suite(
  name: string,
  open: () => Promise<{ gateway: Store; cli: Store; cleanup(): Promise<void> }>,
  skip?: string | false,
) {
  describe(`machine clients on ${name}`, { skip: skip || false }, () => {
    let gateway: Store;
    let cli: Store;
    let cleanup: () => Promise<void>;
    before(async () => {
      ({ gateway, cli, cleanup } = await open());
    });
    after(async () => {
      await gateway?.close();
      await cli?.close();
      await cleanup?.();
    });

    it("gives oidc-provider the unsealed secret, and nothing once the client is revoked", async () => {
      const { client, clientSecret } = await createMachineClient(cli, SEAL_KEY, {
        name: "ci",
        authMethod: "client_secret_basic",
        servers: ["demo"],
        scopes: ["mcp"],
        expiresAt: inAWeek(),
      });
      assert.ok(clientSecret);
      const Adapter = withMachineClients(
        sqlAdapter(oauthDatabase(gateway), ARTEFACT_KEYS),
        oauthDatabase(gateway),
        SEAL_KEY,
        new Set(["mcp"]),
      );
      const found = await new Adapter("Client").find(client.clientId);
      assert.equal(found?.client_secret, clientSecret);
      // client_credentials, and RFC 8693 token exchange (docs/token-exchange.md): nothing interactive.
      assert.deepEqual(found?.grant_types, [
        "client_credentials",
        "urn:ietf:params:oauth:grant-type:token-exchange",
      ]);
      assert.deepEqual(found?.redirect_uris, []);
      const otherKey = deriveOAuthKey(randomBytes(32), "client-secret-encryption");
      const Wrong = withMachineClients(
        sqlAdapter(oauthDatabase(gateway), ARTEFACT_KEYS),
        oauthDatabase(gateway),
        otherKey,
        new Set(),
      );
      await assert.rejects(
        new Wrong("Client").find(client.clientId),
        "a secret sealed under another server secret does not open",
      );
      await assert.rejects(new Adapter("Client").upsert(client.clientId, { client_id: client.clientId }));
      assert.equal(await revokeMachineClient(cli, client.clientId), true);
      assert.equal(await new Adapter("Client").find(client.clientId), undefined);
    });

    it("rejects-concurrent-assertion-replay: the jti store keeps the first of racing writers only", async () => {
      const Adapter = sqlAdapter(oauthDatabase(gateway), ARTEFACT_KEYS);
      const seen = new Adapter(REPLAY_DETECTION_MODEL);
      const id = randomBytes(16).toString("base64url");
      const settled = await Promise.allSettled(
        Array.from({ length: 10 }, () => seen.upsert(id, { iss: "mc_x", jti: id }, 120)),
      );
      assert.equal(settled.filter((r) => r.status === "fulfilled").length, 1);
      for (const r of settled) {
        if (r.status === "rejected") {
          assert.ok(r.reason instanceof ReplayDetected);
          assert.equal(r.reason.statusCode, 401);
          assert.equal(r.reason.message, "invalid_client");
        }
      }
      // Another process (the other store connection) is refused as well.
      await assert.rejects(
        new (sqlAdapter(oauthDatabase(cli), ARTEFACT_KEYS))(REPLAY_DETECTION_MODEL).upsert(id, {}, 120),
        ReplayDetected,
      );
      // An expired, not yet purged record no longer blocks the id.
      const stale = randomBytes(16).toString("base64url");
      const past = new (sqlAdapter(oauthDatabase(gateway), ARTEFACT_KEYS, {
        now: () => Date.now() - 10 * 60_000,
      }))(REPLAY_DETECTION_MODEL);
      await past.upsert(stale, { jti: stale }, 60);
      await seen.upsert(stale, { jti: stale }, 60);
      assert.ok(await seen.find(stale));
      // Every other model keeps plain upsert semantics.
      const session = new Adapter("Session");
      await session.upsert(id, { n: 1 }, 60);
      await session.upsert(id, { n: 2 }, 60);
      assert.equal((await session.find(id))?.n, 2);
    });

    it("reaches a running roster when another process revokes the client (change feed)", async () => {
      const { client } = await createMachineClient(cli, SEAL_KEY, {
        name: "job",
        authMethod: "client_secret_basic",
        servers: ["demo"],
        scopes: [],
        expiresAt: inAWeek(),
      });
      const roster = new MachineClientRoster(gateway, oauthDatabase(gateway));
      await roster.start();
      try {
        await until(async () => {
          await roster.refresh();
          return roster.status(client.clientId).ok;
        });
        await revokeMachineClient(cli, client.clientId);
        // SQLite: the next refresh sees it at once; PostgreSQL: as soon as the NOTIFY arrives.
        await until(async () => {
          await roster.refresh();
          return !roster.status(client.clientId).ok;
        });
        const status = roster.status(client.clientId);
        assert.ok(!status.ok && /revoked/.test(status.reason));
      } finally {
        await roster.close();
      }
    });
  });
}

suite("SQLite", async () => {
  const dir = await mkdtemp(join(tmpdir(), "portcullis-machine-clients-"));
  const file = join(dir, "db.sqlite");
  const gateway = await openStore(file);
  await gateway.migrate();
  return { gateway, cli: await openStore(file), cleanup: () => rm(dir, { recursive: true, force: true }) };
});

const pgSkip = await postgresSkip();
suite(
  "PostgreSQL",
  async () => {
    const database = await createTestDatabase();
    const gateway = await openStore(database.url);
    await gateway.migrate();
    return { gateway, cli: await openStore(database.url), cleanup: () => database.drop() };
  },
  pgSkip,
);

describe("machine client secrets at rest", () => {
  it("never writes the client_secret_basic secret in plaintext into the SQLite file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "portcullis-machine-secret-"));
    try {
      const store = await openStore(join(dir, "db.sqlite"));
      await store.migrate();
      const created = [];
      for (let i = 0; i < 3; i++) {
        created.push(
          await createMachineClient(store, SEAL_KEY, {
            name: `client-${i}`,
            authMethod: "client_secret_basic",
            servers: ["demo"],
            scopes: ["mcp"],
            expiresAt: inAWeek(),
          }),
        );
      }
      await store.close();
      // The database file and any WAL/SHM left beside it.
      const bytes = Buffer.concat(readdirSync(dir).map((f) => readFileSync(join(dir, f))));
      for (const { client, clientSecret } of created) {
        assert.ok(clientSecret);
        assert.ok(bytes.includes(client.clientId), "the id is stored (sanity check of the scan)");
        assert.ok(!bytes.includes(clientSecret), "the secret must not be stored in plaintext");
        assert.ok(!bytes.includes(Buffer.from(clientSecret, "base64url")), "nor its raw bytes");
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("machine client public keys", () => {
  it("accepts a PEM public key and refuses private or symmetric key material", async () => {
    const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const jwks = await parsePublicKeys(publicKey.export({ format: "pem", type: "spki" }).toString(), "pem");
    assert.equal(jwks.keys.length, 1);
    assert.ok(jwks.keys[0]?.kid);
    assert.equal(jwks.keys[0]?.d, undefined);
    await assert.rejects(
      parsePublicKeys(privateKey.export({ format: "pem", type: "pkcs8" }).toString(), "pem"),
      (err: Error) => err instanceof MachineClientError && /--public-key/.test(err.message),
    );
    const privateJwk = privateKey.export({ format: "jwk" });
    await assert.rejects(
      parsePublicKeys(JSON.stringify({ keys: [privateJwk] }), "jwks"),
      (err: Error) => err instanceof MachineClientError && /private key material/.test(err.message),
    );
    await assert.rejects(
      parsePublicKeys(JSON.stringify({ keys: [{ kty: "oct", k: "c2VjcmV0" }] }), "jwks"),
      (err: Error) => err instanceof MachineClientError && /--jwks/.test(err.message),
    );
  });
});
