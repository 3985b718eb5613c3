// Safety numbers (docs/PROTOCOL.md section 8).
import { ascii } from "./bytes";
import { PublicIdentity } from "./identity";
import { labels } from "./labels";
import { sha512 } from "./primitives";

export const safetyIterations = 5200;

export function fingerprintDigits(id: PublicIdentity): string {
  let d = sha512(ascii(labels.safetyNumber), id.signingKey, id.dhKey);
  for (let i = 0; i < safetyIterations; i++) d = sha512(d, id.signingKey, id.dhKey);
  let out = "";
  for (let k = 0; k < 6; k++) {
    let v = 0n;
    for (let j = 0; j < 5; j++) v = (v << 8n) | BigInt(d[5 * k + j]);
    out += (v % 100000n).toString().padStart(5, "0");
  }
  return out;
}

export function safetyNumber(a: PublicIdentity, b: PublicIdentity): string {
  const x = fingerprintDigits(a);
  const y = fingerprintDigits(b);
  return x < y ? x + y : y + x;
}

export function formatSafetyNumber(n: string): string {
  return n.match(/.{1,5}/g)!.join(" ");
}
