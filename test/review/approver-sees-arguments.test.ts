/**
 * What an approver is shown of a held call's arguments (CLI, webhook payload, link page):
 * nothing hidden from the approver by a key name, and no secret handed to a chat channel.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import type { JsonObject } from "../../src/classify/message.js";
import { summarizeArguments } from "../../src/review/argumentsSummary.js";

it("an argument named __proto__ cannot hide from the approver what the call will do", () => {
  const args = JSON.parse('{"__proto__":{"path":"/srv/reports"},"mode":"delete"}') as JsonObject;
  const shown = JSON.parse(JSON.stringify(summarizeArguments(args)));
  assert.deepEqual(Object.keys(shown).sort(), ["__proto__", "mode"]);
  assert.equal(JSON.stringify(shown).includes("/srv/reports"), true);
});

it("a password pasted into a command is masked in what the approver's chat channel receives", () => {
  const shown = summarizeArguments({
    command: "mysql -u root -pHunter2Secret db",
    note: "Authorization: Bearer abc.def.ghi-secret-token",
    plain: "ls -la /srv",
  });
  const text = JSON.stringify(shown);
  assert.equal(text.includes("Hunter2Secret"), false);
  assert.equal(text.includes("secret-token"), false);
  assert.equal(shown.plain, "ls -la /srv", "control: ordinary text is shown as sent");
  assert.match(String(shown.command), /^mysql -u root .*\[masked\]/);
});
