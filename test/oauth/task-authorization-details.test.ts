/**
 * RFC 9396 `authorization_details` of type `urn:portcullis:task` (src/oauth/taskAuthorizationDetails.ts)
 * and RFC 8693 §4.1 `act` chains (src/oauth/exchangeActor.ts): what a token exchange accepts
 * as a task's details, and how delegation nests actors.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { actorChain, delegatedActor, MAX_DELEGATION_DEPTH } from "../../src/oauth/exchangeActor.js";
import { parseTaskDetails, TASK_DETAILS_TYPE } from "../../src/oauth/taskAuthorizationDetails.js";

const RESOURCE = "https://gw.example.com/mcp/github";
const details = (entry: Record<string, unknown>) => JSON.stringify([{ type: TASK_DETAILS_TYPE, ...entry }]);

describe("urn:portcullis:task authorization details", () => {
  it("parses purpose, tools, lifetime and budget", () => {
    const r = parseTaskDetails(
      details({
        purpose: " triage ",
        tools: ["search", "search"],
        lifetime_seconds: 900,
        budget: 5,
        locations: [RESOURCE],
      }),
      RESOURCE,
    );
    assert.deepEqual(r, {
      ok: true,
      details: { purpose: "triage", tools: ["search"], lifetimeSeconds: 900, budget: 5 },
    });
  });

  it("absent tools mean the whole server; absent lifetime and budget are null", () => {
    const r = parseTaskDetails(details({ purpose: "p" }), RESOURCE);
    assert.deepEqual(r, {
      ok: true,
      details: { purpose: "p", tools: null, lifetimeSeconds: null, budget: null },
    });
  });

  for (const [name, raw] of [
    ["missing", undefined],
    ["not JSON", "{"],
    ["not an array", JSON.stringify({ type: TASK_DETAILS_TYPE, purpose: "p" })],
    [
      "two entries",
      JSON.stringify([
        { type: TASK_DETAILS_TYPE, purpose: "p" },
        { type: TASK_DETAILS_TYPE, purpose: "q" },
      ]),
    ],
    ["another type", JSON.stringify([{ type: "payment_initiation", purpose: "p" }])],
    ["no purpose", details({})],
    ["empty purpose", details({ purpose: "  " })],
    ["wildcard tool", details({ purpose: "p", tools: ["*"] })],
    ["tool glob", details({ purpose: "p", tools: ["get_*"] })],
    ["empty tools", details({ purpose: "p", tools: [] })],
    ["negative lifetime", details({ purpose: "p", lifetime_seconds: -1 })],
    ["fractional budget", details({ purpose: "p", budget: 1.5 })],
    ["other location", details({ purpose: "p", locations: ["https://evil.example/mcp/github"] })],
    ["an actor smuggled in (act forgery)", details({ purpose: "p", act: { sub: "admin" } })],
    ["an actor member (act forgery)", details({ purpose: "p", actor: "admin" })],
  ] as const) {
    it(`refuses ${name}`, () => {
      const r = parseTaskDetails(raw, RESOURCE);
      assert.equal(r.ok, false);
    });
  }
});

describe("RFC 8693 act chains", () => {
  it("a first delegation names the actor alone", () => {
    assert.deepEqual(delegatedActor("client:agent", undefined), { sub: "client:agent" });
  });

  it("a re-delegation nests the previous chain under the new actor", () => {
    const first = delegatedActor("client:agent", undefined) ?? undefined;
    const second = delegatedActor("key:sub-agent", first);
    assert.deepEqual(second, { sub: "key:sub-agent", act: { sub: "client:agent" } });
    assert.deepEqual(actorChain(second), ["key:sub-agent", "client:agent"]);
  });

  it("refuses a chain deeper than the bound", () => {
    let chain = delegatedActor("a0", undefined) ?? undefined;
    for (let i = 1; i < MAX_DELEGATION_DEPTH; i++) chain = delegatedActor(`a${i}`, chain) ?? undefined;
    assert.equal(actorChain(chain).length, MAX_DELEGATION_DEPTH);
    assert.equal(delegatedActor("one-too-many", chain), null);
  });
});
