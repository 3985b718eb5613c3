// Contact codes (the CLI's format, clients/core/src/contact_code.hpp) and
// account codes (the roaming vault id, Crockford base32 in groups of four).
import { concat, equal } from "../crypto/bytes";
import { identityFromWire, identityToWire, PublicIdentity } from "../crypto/identity";
import { hash256 } from "../crypto/primitives";
import { create } from "@bufbuild/protobuf";
import { IdentityKeysSchema } from "../gen/wire_pb";

const b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const codeSize = 1 + 16 + 32 + 32 + 64 + 32 + 4;

function base64url(bytes: Uint8Array): string {
  let out = "";
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = ((acc << 8) | b) & 0xffffff;
    bits += 8;
    while (bits >= 6) {
      out += b64[(acc >> (bits - 6)) & 63];
      bits -= 6;
    }
  }
  if (bits > 0) out += b64[(acc << (6 - bits)) & 63];
  return out;
}

function fromBase64url(s: string): Uint8Array | undefined {
  const out: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const c of s) {
    const v = b64.indexOf(c);
    if (v < 0) return undefined;
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      out.push((acc >> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Uint8Array.from(out);
}

export interface ContactCode {
  mailboxId: Uint8Array;
  identity: PublicIdentity;
  accessKey: Uint8Array;
}

export function encodeContactCode(c: ContactCode): string {
  const body = concat(Uint8Array.of(1), c.mailboxId, c.identity.signingKey, c.identity.dhKey, c.identity.dhKeySignature, c.accessKey);
  return base64url(concat(body, hash256(body).slice(0, 4)));
}

/** Throws on a damaged code (length, characters, checksum, version, signature). */
export function decodeContactCode(code: string): ContactCode {
  const bytes = fromBase64url(code.replace(/\s+/g, ""));
  if (!bytes || bytes.length !== codeSize || bytes[0] !== 1) throw new Error("bad_contact_code");
  if (!equal(hash256(bytes.subarray(0, codeSize - 4)).subarray(0, 4), bytes.subarray(codeSize - 4)))
    throw new Error("bad_contact_code");
  const wire = create(IdentityKeysSchema, {
    signingKey: bytes.slice(17, 49),
    dhKey: bytes.slice(49, 81),
    dhKeySignature: bytes.slice(81, 145),
  });
  let identity: PublicIdentity;
  try {
    identity = identityFromWire(wire);
  } catch {
    throw new Error("bad_contact_code");
  }
  void identityToWire;
  return { mailboxId: bytes.slice(1, 17), identity, accessKey: bytes.slice(145, 177) };
}

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/** 16 bytes -> 26 Crockford base32 characters, in groups of four. */
export function encodeAccountCode(id: Uint8Array): string {
  let acc = 0n;
  for (const b of id) acc = (acc << 8n) | BigInt(b);
  acc <<= 2n; // 128 bits -> 130 = 26 x 5
  let s = "";
  for (let i = 25; i >= 0; i--) s += crockford[Number((acc >> BigInt(5 * i)) & 31n)];
  return s.match(/.{1,4}/g)!.join("-");
}

export function decodeAccountCode(code: string): Uint8Array | undefined {
  const s = code
    .toUpperCase()
    .replace(/[\s-]/g, "")
    .replace(/O/g, "0")
    .replace(/[IL]/g, "1");
  if (s.length !== 26) return undefined;
  let acc = 0n;
  for (const c of s) {
    const v = crockford.indexOf(c);
    if (v < 0) return undefined;
    acc = (acc << 5n) | BigInt(v);
  }
  if ((acc & 3n) !== 0n) return undefined;
  acc >>= 2n;
  const out = new Uint8Array(16);
  for (let i = 15; i >= 0; i--) {
    out[i] = Number(acc & 0xffn);
    acc >>= 8n;
  }
  return out;
}
