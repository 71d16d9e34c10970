/**
 * The gateway's parts stop through one disposer stack (src/core/lifetime.ts): the last part
 * started is the first stopped, a part that fails to stop does not keep the others running,
 * and a startup that fails half-way stops exactly what had started.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Lifetime } from "../../src/core/lifetime.js";

describe("the disposer stack", () => {
  it("stops parts in the reverse order they started", async () => {
    const stopped: string[] = [];
    const lifetime = new Lifetime();
    for (const part of ["store", "audit", "listener"]) lifetime.defer(part, () => void stopped.push(part));
    await lifetime.close();
    assert.deepEqual(stopped, ["listener", "audit", "store"]);
  });

  it("a part that fails to stop does not keep the others from stopping, and the failure is reported", async () => {
    const stopped: string[] = [];
    const reported: string[] = [];
    const lifetime = new Lifetime((_err, part) => reported.push(part));
    lifetime.defer("store", () => void stopped.push("store"));
    lifetime.defer("audit", async () => {
      await Promise.resolve();
      throw new Error("flush failed");
    });
    lifetime.defer("listener", () => void stopped.push("listener"));
    await assert.rejects(lifetime.close(), (err: unknown) => {
      assert.ok(err instanceof AggregateError);
      assert.equal((err.errors[0] as Error).message, "flush failed");
      return true;
    });
    assert.deepEqual(stopped, ["listener", "store"]);
    assert.deepEqual(reported, ["audit"]);
  });

  it("a startup that fails half-way stops what had started, in reverse, and rethrows the cause", async () => {
    const stopped: string[] = [];
    const lifetime = new Lifetime();
    await assert.rejects(
      lifetime.starting(async () => {
        lifetime.defer("port", () => void stopped.push("port"));
        lifetime.defer("store", () => void stopped.push("store"));
        throw new Error("authorization server refused its config");
      }),
      /authorization server refused its config/,
    );
    assert.deepEqual(stopped, ["store", "port"]);
  });

  it("a part stopped early (the startup port handed over) is not stopped again", async () => {
    let closes = 0;
    const lifetime = new Lifetime();
    const port = lifetime.defer("startup port", () => {
      closes++;
    });
    await port.dispose();
    await lifetime.close();
    assert.equal(closes, 1);
  });

  it("closing twice stops each part once", async () => {
    let closes = 0;
    const lifetime = new Lifetime();
    lifetime.add("store", { close: () => void closes++ });
    await Promise.all([lifetime.close(), lifetime.close()]);
    assert.equal(closes, 1);
  });
});
