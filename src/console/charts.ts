/**
 * Server-rendered SVG charts of the audit log: decisions per time bucket as stacked bars
 * (allow / review / deny). No script, no inline style: colours come from CSS classes.
 */
import type { AuditRecord } from "../store/types.js";
import { escapeHtml } from "./html.js";

export interface Bucket {
  start: Date;
  allow: number;
  review: number;
  deny: number;
}

/** Counts records into `count` buckets of `bucketMs`, the last ending at `now`. */
export function bucketize(
  records: readonly Pick<AuditRecord, "at" | "decision">[],
  now: number,
  bucketMs: number,
  count: number,
): Bucket[] {
  const first = now - bucketMs * count;
  const buckets: Bucket[] = Array.from({ length: count }, (_, i) => ({
    start: new Date(first + i * bucketMs),
    allow: 0,
    review: 0,
    deny: 0,
  }));
  for (const r of records) {
    const i = Math.floor((r.at.getTime() - first) / bucketMs);
    const b = buckets[i];
    if (b !== undefined) b[r.decision]++;
  }
  return buckets;
}

export function stackedBars(title: string, buckets: readonly Bucket[], label: (d: Date) => string): string {
  const width = 640;
  const height = 200;
  const left = 36;
  const bottom = 24;
  const top = 10;
  const plotH = height - bottom - top;
  const max = Math.max(1, ...buckets.map((b) => b.allow + b.review + b.deny));
  const slot = (width - left - 8) / Math.max(1, buckets.length);
  const barW = Math.max(2, slot * 0.7);
  const parts: string[] = [];
  const total = buckets.reduce((n, b) => n + b.allow + b.review + b.deny, 0);
  buckets.forEach((b, i) => {
    const x = left + i * slot + (slot - barW) / 2;
    let y = top + plotH;
    for (const kind of ["allow", "review", "deny"] as const) {
      const h = (b[kind] / max) * plotH;
      if (h <= 0) continue;
      y -= h;
      parts.push(
        `<rect class="bar-${kind}" x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${barW.toFixed(1)}" height="${h.toFixed(1)}"><title>${escapeHtml(label(b.start))}: ${b[kind]} ${kind}</title></rect>`,
      );
    }
    if (i % Math.ceil(buckets.length / 6) === 0)
      parts.push(
        `<text x="${(x + barW / 2).toFixed(1)}" y="${height - 6}" text-anchor="middle">${escapeHtml(label(b.start))}</text>`,
      );
  });
  return [
    `<svg class="chart" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeHtml(`${title}: ${total} decisions`)}" xmlns="http://www.w3.org/2000/svg">`,
    `<line class="axis" x1="${left}" y1="${top + plotH}" x2="${width - 4}" y2="${top + plotH}"/>`,
    `<line class="axis" x1="${left}" y1="${top}" x2="${left}" y2="${top + plotH}"/>`,
    `<text x="${left - 4}" y="${top + 8}" text-anchor="end">${max}</text>`,
    `<text x="${left - 4}" y="${top + plotH}" text-anchor="end">0</text>`,
    ...parts,
    "</svg>",
  ].join("");
}
