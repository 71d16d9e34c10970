/**
 * Issue 10, item 10: a client that discovers the gateway while it starts must never find it
 * ready while its OAuth discovery is incomplete. The gateway used to answer /readyz 200 for
 * about a second while the protected-resource metadata (RFC 9728 §3) still listed
 * `"authorization_servers": []` and the authorization server's routes were not mounted: a
 * client discovering in that window could not sign in. Now the port is bound first (the
 * issuer is known before the listener is built), and the real listener takes over only once
 * every advertised endpoint works; meanwhile the port answers 503.
 *
 * A prober hits the port from the moment the process is spawned until well after it logs
 * that it listens, and every answer is checked against that claim.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { DEMO_SERVER, type RunningGateway, startGateway } from "../helpers/gateway.js";
import { freePort } from "../helpers/net.js";

interface Round {
  readyz: number;
  healthz: { status: number; body: string };
  prm: { status: number; body: string };
  asMetadata: { status: number; body: string };
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { headers: { accept: "application/json" } });
  return { status: res.status, body: await res.text() };
}

describe("discovery while the gateway starts", () => {
  it("a client discovering during startup never finds the gateway ready without its authorization server", async (t) => {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const rounds: Round[] = [];
    let started = false;
    let after = 0;
    const probe = (async () => {
      // Until the gateway says it listens, and twenty rounds beyond.
      while (!started || after++ < 20) {
        try {
          const readyz = (await get(`${base}/readyz`)).status;
          rounds.push({
            readyz,
            healthz: await get(`${base}/healthz`),
            prm: await get(`${base}/.well-known/oauth-protected-resource/mcp/demo`),
            asMetadata: await get(`${base}/.well-known/oauth-authorization-server`),
          });
        } catch {
          // Not bound yet, or the port is being handed over.
        }
        await sleep(10); // a client polling, not a flood that starves the starting gateway
      }
    })();
    let gw: RunningGateway;
    try {
      gw = await startGateway({
        startTimeoutMs: 90_000,
        config: {
          listen: { port },
          oauth: { mode: "builtin" },
          servers: { demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] } },
        },
      });
    } finally {
      started = true;
    }
    try {
      await probe;
      const ready = rounds.filter((r) => r.readyz === 200);
      t.diagnostic(
        `${rounds.length} probe rounds: ${rounds.length - ready.length} not ready (503), ${ready.length} ready`,
      );
      assert.ok(ready.length > 0, "positive control: the prober saw the gateway ready");
      for (const r of rounds) {
        const live =
          r.healthz.status === 200 && (JSON.parse(r.healthz.body) as { status: string }).status === "ok";
        if (r.readyz !== 200 && !live) continue;
        assert.equal(r.prm.status, 200, `ready, so the resource metadata answers: ${JSON.stringify(r)}`);
        const prm = JSON.parse(r.prm.body) as { authorization_servers: string[] };
        assert.deepEqual(
          prm.authorization_servers,
          [gw.url],
          `ready, so the issuer is advertised: ${JSON.stringify(r)}`,
        );
        assert.equal(
          r.asMetadata.status,
          200,
          `ready, so the authorization server answers: ${JSON.stringify(r)}`,
        );
        assert.equal((JSON.parse(r.asMetadata.body) as { issuer: string }).issuer, gw.url);
      }
      // Whatever the moment, the metadata never advertises an empty list of authorization servers.
      for (const r of rounds.filter((x) => x.prm.status === 200))
        assert.notDeepEqual(
          (JSON.parse(r.prm.body) as { authorization_servers: string[] }).authorization_servers,
          [],
        );
    } finally {
      await probe;
      await gw.stop();
    }
  });
});
