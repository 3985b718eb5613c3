// A tiny element builder: text goes in as text nodes, never as HTML.
type Attrs = Record<string, string | boolean | ((e: Event) => void) | undefined>;
type Child = Node | string | false | undefined | null;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (typeof v === "function") el.addEventListener(k.replace(/^on/, ""), v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, v);
  }
  for (const c of children) if (c !== false && c !== undefined && c !== null) el.append(c);
  return el;
}
