/**
 * What an approval is bound to: the exact caller, server, method, target and arguments of
 * one call. The arguments are bound by the SHA-256 of their canonical JSON (sorted keys),
 * so a retry whose arguments changed in any way does not match the approval.
 */
import { createHash, randomBytes } from "node:crypto";
import type { ClassifiedMessage, JsonObject } from "../classify/message.js";
import { canonicalJson } from "../core/canonicalJson.js";

/** Methods that may be held for review (the MCP 2026-07-28 multi round-trip methods). */
export const REVIEWABLE_METHODS: ReadonlySet<string> = new Set([
  "tools/call",
  "prompts/get",
  "resources/read",
]);

const ID_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** `apr_` + 16 base62 characters (~95 bits). */
export function newApprovalId(): string {
  const bytes = randomBytes(16);
  let id = "apr_";
  for (const b of bytes) id += ID_ALPHABET[b % 62];
  return id;
}

export const APPROVAL_ID = /^apr_[0-9A-Za-z]{16}$/;

/** The call's arguments: `params.arguments` (tools/call, prompts/get); none for resources/read. */
export function callArguments(msg: ClassifiedMessage): JsonObject {
  const params = msg.message.params as JsonObject | undefined;
  const args = params?.arguments;
  return args !== null && typeof args === "object" && !Array.isArray(args) ? (args as JsonObject) : {};
}

/** SHA-256 (hex) of the canonical JSON of the arguments. */
export function argumentsHash(args: JsonObject): string {
  return createHash("sha256").update(canonicalJson(args)).digest("hex");
}

/** The gateway's own retry fields (MCP MRTR) read from params. */
export function presentedRequestState(msg: ClassifiedMessage): string | null {
  const params = msg.message.params as JsonObject | undefined;
  return typeof params?.requestState === "string" ? params.requestState : null;
}

/** The message without the gateway's requestState: the upstream never issued it. */
export function withoutRequestState(msg: ClassifiedMessage): ClassifiedMessage {
  const params = { ...(msg.message.params as JsonObject) };
  delete params.requestState;
  delete params.inputResponses;
  return { ...msg, message: { ...msg.message, params } };
}
