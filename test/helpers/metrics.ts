/** Scraping a test gateway's Prometheus endpoint. */
import type { RunningGateway } from "./gateway.js";

/** The /metrics text. */
export async function scrape(gw: RunningGateway): Promise<string> {
  const res = await fetch(`${gw.url}/metrics`);
  return res.text();
}

/** The series (name and labels) of every sample line whose name starts with `prefix`. */
export function seriesOf(text: string, prefix = "portcullis_"): Set<string> {
  const out = new Set<string>();
  for (const line of text.split("\n")) {
    if (!line.startsWith(prefix)) continue;
    out.add(line.slice(0, line.lastIndexOf(" ")));
  }
  return out;
}

/** The value of one sample, e.g. `portcullis_limit_refusals_total{limit="streams_per_caller"}`. */
export function sample(text: string, series: string): number | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}
