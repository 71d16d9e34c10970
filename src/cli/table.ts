/** Plain-text tables for the CLI's human output (arrays shown comma-separated, missing as -). */
export function table(rows: Record<string, unknown>[], cols: string[], empty = "(none)"): string {
  if (rows.length === 0) return empty;
  const cells = rows.map((r) =>
    cols.map((c) => (Array.isArray(r[c]) ? (r[c] as unknown[]).join(",") : String(r[c] ?? "-"))),
  );
  const widths = cols.map((c, i) => Math.max(c.length, ...cells.map((row) => (row[i] as string).length)));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => v.padEnd(widths[i] as number))
      .join("  ")
      .trimEnd();
  return [line(cols), ...cells.map(line)].join("\n");
}
