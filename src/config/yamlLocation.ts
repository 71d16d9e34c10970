/**
 * Locating a value in a parsed YAML document (the `yaml` package's nodes), so that a
 * validation error can name the file and line an operator must fix.
 */
import { isMap, isScalar, isSeq, type LineCounter, type Node, type ParsedNode } from "yaml";

/** Where a YAML node starts, 1-based. */
export function lineOf(node: Node | null | undefined, lc: LineCounter): number {
  const start = (node as ParsedNode | null | undefined)?.range?.[0];
  return start === undefined ? 1 : lc.linePos(start).line;
}

/** The deepest node along `path`, and for an unknown key the key node itself. */
export function nodeAt(root: Node | null, path: readonly PropertyKey[], key?: string): Node | null {
  let node: Node | null = root;
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && p.key.value === seg);
      if (!pair) return node;
      node = (pair.value as Node | null) ?? (pair.key as Node);
    } else if (isSeq(node) && typeof seg === "number") {
      const item = node.items[seg] as Node | undefined;
      if (!item) return node;
      node = item;
    } else return node;
  }
  if (key !== undefined && isMap(node)) {
    const pair = node.items.find((p) => isScalar(p.key) && p.key.value === key);
    if (pair) return pair.key as Node;
  }
  return node;
}
