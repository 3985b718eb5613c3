// Identities, prekeys and bundle verification (docs/PROTOCOL.md section 2).
import { create } from "@bufbuild/protobuf";
import { ascii, concat, u32, u8 } from "./bytes";
import { fail } from "./errors";
import { labels } from "./labels";
import { isLowOrder, SigningKeyPair, sign, signingFromSeed, verify, x25519Base } from "./primitives";
import { RandomSource } from "./random";
import {
  DevicePrekeys,
  IdentityKeys,
  IdentityKeysSchema,
  OneTimePrekey,
  PrekeyKind,
  SignedPrekey,
  SignedPrekeySchema,
} from "../gen/wire_pb";

export interface PublicIdentity {
  signingKey: Uint8Array;
  dhKey: Uint8Array;
  dhKeySignature: Uint8Array;
}

export interface IdentityKeyPair {
  signing: SigningKeyPair;
  dhSecret: Uint8Array;
  pub: PublicIdentity;
}

export interface X25519KeyPair {
  secret: Uint8Array;
  publicKey: Uint8Array;
}

export function x25519FromSecret(secret: Uint8Array): X25519KeyPair {
  return { secret: secret.slice(), publicKey: x25519Base(secret) };
}

export function x25519Generate(random: RandomSource): X25519KeyPair {
  return x25519FromSecret(random(32));
}

export function encodeIdentity(id: PublicIdentity): Uint8Array {
  return concat(id.signingKey, id.dhKey);
}

export function identityDhMessage(dhKey: Uint8Array): Uint8Array {
  return concat(ascii(labels.identityDh), dhKey);
}

export function prekeyMessage(kind: number, id: number, pub: Uint8Array): Uint8Array {
  return concat(ascii(labels.prekey), u8(kind), u32(id), pub);
}

export function identityFromSecrets(signingSeed: Uint8Array, dhSecret: Uint8Array): IdentityKeyPair {
  const signing = signingFromSeed(signingSeed);
  const dhKey = x25519Base(dhSecret);
  return {
    signing,
    dhSecret: dhSecret.slice(),
    pub: { signingKey: signing.publicKey, dhKey, dhKeySignature: sign(signing, identityDhMessage(dhKey)) },
  };
}

export function generateIdentity(random: RandomSource): IdentityKeyPair {
  const seed = random(32);
  const dh = random(32);
  return identityFromSecrets(seed, dh);
}

export function identityToWire(id: PublicIdentity): IdentityKeys {
  return create(IdentityKeysSchema, {
    signingKey: id.signingKey,
    dhKey: id.dhKey,
    dhKeySignature: id.dhKeySignature,
  });
}

/** Checks sizes, the DH key's signature and its order. */
export function identityFromWire(k: IdentityKeys | undefined): PublicIdentity {
  if (!k || k.signingKey.length !== 32 || k.dhKey.length !== 32 || k.dhKeySignature.length !== 64)
    fail("invalid_argument");
  if (!verify(k.signingKey, identityDhMessage(k.dhKey), k.dhKeySignature)) fail("bad_signature");
  if (isLowOrder(k.dhKey)) fail("weak_key");
  return { signingKey: k.signingKey.slice(), dhKey: k.dhKey.slice(), dhKeySignature: k.dhKeySignature.slice() };
}

export function sameIdentity(a: PublicIdentity, b: PublicIdentity): boolean {
  const eq = (x: Uint8Array, y: Uint8Array) => x.length === y.length && x.every((v, i) => v === y[i]);
  return eq(a.signingKey, b.signingKey) && eq(a.dhKey, b.dhKey) && eq(a.dhKeySignature, b.dhKeySignature);
}

export interface SignedPrekeyPair {
  id: number;
  kind: PrekeyKind; // SIGNED or LAST_RESORT
  key: X25519KeyPair;
  signature: Uint8Array;
}

export function generateSignedPrekey(
  identity: IdentityKeyPair,
  id: number,
  kind: PrekeyKind,
  random: RandomSource,
): SignedPrekeyPair {
  const key = x25519Generate(random);
  return { id, kind, key, signature: sign(identity.signing, prekeyMessage(kind, id, key.publicKey)) };
}

export function signedPrekeyToWire(k: SignedPrekeyPair): SignedPrekey {
  return create(SignedPrekeySchema, { id: k.id, publicKey: k.key.publicKey, signature: k.signature });
}

export interface PrekeyBundle {
  identity: PublicIdentity;
  signedPrekey: { id: number; publicKey: Uint8Array };
  oneTime?: { id: number; publicKey: Uint8Array };
  lastResort?: { id: number; publicKey: Uint8Array };
}

function checkSigned(p: SignedPrekey, kind: PrekeyKind, identity: PublicIdentity) {
  if (p.publicKey.length !== 32 || p.signature.length !== 64) fail("invalid_argument");
  if (!verify(identity.signingKey, prekeyMessage(kind, p.id, p.publicKey), p.signature)) fail("bad_signature");
  if (isLowOrder(p.publicKey)) fail("weak_key");
  return { id: p.id, publicKey: p.publicKey.slice() };
}

/** verify_bundle of docs/PROTOCOL.md section 2. */
export function verifyBundle(identityWire: IdentityKeys | undefined, device: DevicePrekeys): PrekeyBundle {
  const identity = identityFromWire(identityWire);
  if (!device.signedPrekey) fail("invalid_argument");
  const out: PrekeyBundle = { identity, signedPrekey: checkSigned(device.signedPrekey, PrekeyKind.SIGNED, identity) };
  const ot: OneTimePrekey | undefined = device.oneTime;
  if (ot) {
    if (ot.publicKey.length !== 32) fail("invalid_argument");
    if (isLowOrder(ot.publicKey)) fail("weak_key");
    out.oneTime = { id: ot.id, publicKey: ot.publicKey.slice() };
  }
  if (device.lastResort) out.lastResort = checkSigned(device.lastResort, PrekeyKind.LAST_RESORT, identity);
  return out;
}
