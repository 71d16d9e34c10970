/** Reading MCP results in tests (MCP spec "Tools" § Tool Result: `content` blocks). */

/** The text of a tool result's first content block. */
export function textOf(result: unknown): string {
  const content = (result as { content?: Array<{ type?: string; text?: string }> } | undefined)?.content;
  const first = content?.[0];
  if (first?.type !== undefined && first.type !== "text") throw new Error(`not a text block: ${first.type}`);
  if (typeof first?.text !== "string") throw new Error(`no text content in ${JSON.stringify(result)}`);
  return first.text;
}

/** The JSON a tool returned as its first text block. */
export function jsonOf<T = Record<string, unknown>>(result: unknown): T {
  return JSON.parse(textOf(result)) as T;
}

/**
 * A gateway refusal's JSON-RPC error with its decision id (`data.decisionId`, which every
 * recorded refusal carries) checked and taken out, for comparing the rest exactly.
 */
export function withoutDecisionId(error: unknown): Record<string, unknown> {
  const { data, ...rest } = error as { data?: Record<string, unknown> };
  const { decisionId, ...others } = data ?? {};
  if (typeof decisionId !== "string" || decisionId === "")
    throw new Error(`no decision id in ${JSON.stringify(error)}`);
  return Object.keys(others).length === 0 ? rest : { ...rest, data: others };
}
