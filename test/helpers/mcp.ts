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
