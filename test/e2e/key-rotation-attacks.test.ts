/**
 * Issue 10 item 17: `keys rotate` accepted an already-rotated or expired key and could be
 * repeated, each run minting another live successor from one key (standing privilege that
 * grows instead of rolling over). A key now has at most one successor, and only a live key
 * can be rotated; refusals are usage errors (exit 2) that name the problem.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { DEMO_SERVER, type RunningGateway, runCli, startGateway } from "../helpers/gateway.js";

describe("key rotation attacks", () => {
  let gw: RunningGateway;

  before(async () => {
    gw = await startGateway({
      config: {
        environment: "test",
        servers: { demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] } },
      },
    });
  });
  after(() => gw.stop());

  const rotate = (id: string) => runCli(["keys", "rotate", id, "--config", gw.configFile, "--json"]);
  const successorsOf = async (id: string) =>
    ((await gw.cli(["keys", "list", "--all"])) as unknown as { rotatedFrom: string | null }[]).filter(
      (k) => k.rotatedFrom === id,
    );

  it("rotating the same key twice is refused: one key has one live successor", async () => {
    const key = await gw.cli(["keys", "create", "--name", "rotate-twice"]);
    const id = key.id as string;
    const first = await rotate(id);
    assert.equal(first.code, 0, first.stderr);
    const successor = (JSON.parse(first.stdout) as { id: string }).id;
    const again = await rotate(id);
    assert.equal(again.code, 2);
    assert.deepEqual(JSON.parse(again.stdout), {
      error: "usage",
      message: `key ${id} was already rotated to ${successor}; rotate ${successor} instead`,
    });
    assert.deepEqual(
      (await successorsOf(id)).map((k) => (k as unknown as { id: string }).id),
      [successor],
      "no second successor was minted",
    );
    // The successor itself rotates normally (positive control).
    assert.equal((await rotate(successor)).code, 0);
  });

  it("rotating an expired key is refused and mints nothing", async () => {
    const key = await gw.cli(["keys", "create", "--name", "expired", "--expires", "1s"]);
    const id = key.id as string;
    await sleep(1500);
    const r = await rotate(id);
    assert.equal(r.code, 2);
    assert.deepEqual(JSON.parse(r.stdout), {
      error: "usage",
      message: `key ${id} has expired; create a new key instead`,
    });
    assert.deepEqual(await successorsOf(id), []);
  });
});
