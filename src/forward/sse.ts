/**
 * A streaming rewriter for text/event-stream bodies (WHATWG HTML §9.2): events pass
 * through one by one as they arrive (never buffered to the end); the `data` of each event
 * can be rewritten. Used only when a response must be filtered for the caller.
 */
import { Transform, type TransformCallback } from "node:stream";

export function sseRewriter(rewriteData: (data: string) => string): Transform {
  let buffer = "";
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      buffer += chunk.toString("utf8");
      let out = "";
      for (;;) {
        const m = /\r\n\r\n|\n\n|\r\r/.exec(buffer);
        if (!m) break;
        const event = buffer.slice(0, m.index);
        buffer = buffer.slice(m.index + m[0].length);
        out += `${rewriteEvent(event, rewriteData)}\n\n`;
      }
      done(null, out.length ? out : undefined);
    },
    flush(done: TransformCallback) {
      done(null, buffer.length ? rewriteEvent(buffer, rewriteData) : undefined);
    },
  });
}

function rewriteEvent(event: string, rewriteData: (data: string) => string): string {
  const lines = event.split(/\r\n|\n|\r/);
  const data: string[] = [];
  const other: string[] = [];
  for (const line of lines) {
    if (line.startsWith("data:")) data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
    else other.push(line);
  }
  if (data.length === 0) return event;
  const rewritten = rewriteData(data.join("\n"));
  return [...other, ...rewritten.split("\n").map((l) => `data: ${l}`)].join("\n");
}
