// libsodium compositions of docs/PROTOCOL.md section 1. Nothing hand-rolled
// beyond HKDF's composition of HMAC and the bucket arithmetic of padding.
import { ascii, concat, u8 } from "./bytes";
import { fail } from "./errors";
import { sodium } from "./sodium";

export function hmacSha256(key: Uint8Array, ...data: Uint8Array[]): Uint8Array {
  const st = sodium.crypto_auth_hmacsha256_init(key);
  for (const d of data) sodium.crypto_auth_hmacsha256_update(st, d);
  return sodium.crypto_auth_hmacsha256_final(st);
}

export function hkdfExtract(salt: Uint8Array, ikm: Uint8Array): Uint8Array {
  return hmacSha256(salt.length === 0 ? new Uint8Array(32) : salt, ikm);
}

export function hkdfExpand(prk: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  if (length > 255 * 32) fail("invalid_argument");
  const out = new Uint8Array(length);
  let t: Uint8Array = new Uint8Array(0);
  let at = 0;
  for (let i = 1; at < length; i++) {
    t = hmacSha256(prk, t, info, u8(i));
    out.set(t.subarray(0, Math.min(32, length - at)), at);
    at += 32;
  }
  t.fill(0);
  return out;
}

export function hkdf(salt: Uint8Array, ikm: Uint8Array, info: Uint8Array | string, length: number): Uint8Array {
  const prk = hkdfExtract(salt, ikm);
  const out = hkdfExpand(prk, typeof info === "string" ? ascii(info) : info, length);
  prk.fill(0);
  return out;
}

export function x25519Base(secret: Uint8Array): Uint8Array {
  return sodium.crypto_scalarmult_base(secret);
}

/** X25519; an all-zero output (a low-order peer key) is refused: weak_key. */
export function x25519(secret: Uint8Array, peer: Uint8Array): Uint8Array {
  if (secret.length !== 32 || peer.length !== 32) fail("invalid_argument");
  let out: Uint8Array;
  try {
    out = sodium.crypto_scalarmult(secret, peer);
  } catch {
    return fail("weak_key");
  }
  if (sodium.is_zero(out)) fail("weak_key");
  return out;
}

const lowOrderScalar = new Uint8Array(32).fill(0x42);

export function isLowOrder(pub: Uint8Array): boolean {
  try {
    const out = sodium.crypto_scalarmult(lowOrderScalar, pub);
    return sodium.is_zero(out);
  } catch {
    return true;
  }
}

export interface SigningKeyPair {
  seed: Uint8Array;
  publicKey: Uint8Array;
  privateKey: Uint8Array; // libsodium's 64-byte form
}

export function signingFromSeed(seed: Uint8Array): SigningKeyPair {
  const kp = sodium.crypto_sign_seed_keypair(seed);
  return { seed: seed.slice(), publicKey: kp.publicKey, privateKey: kp.privateKey };
}

export function sign(key: SigningKeyPair, message: Uint8Array): Uint8Array {
  return sodium.crypto_sign_detached(message, key.privateKey);
}

export function verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  try {
    return sodium.crypto_sign_verify_detached(signature, message, publicKey);
  } catch {
    return false;
  }
}

export function aeadSeal(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
  return sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, ad, null, nonce, key);
}

export function aeadOpen(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  if (ciphertext.length < 16) fail("malformed_message");
  try {
    return sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, ciphertext, ad, nonce, key);
  } catch {
    return fail("decryption_failed");
  }
}

export function hash256(data: Uint8Array): Uint8Array {
  return sodium.crypto_generichash(32, data, null);
}

export function sha512(...data: Uint8Array[]): Uint8Array {
  return sodium.crypto_hash_sha512(concat(...data));
}

// ------------------------------------------------------------ padding (section 5)

export const maxPadded = 1048576;

/** The smallest bucket >= length + 1, or undefined when too large. */
export function bucketFor(length: number): number | undefined {
  const need = length + 1;
  for (let b = 256; b <= 65536; b *= 2) if (b >= need) return b;
  const b = Math.ceil(need / 65536) * 65536;
  return b <= maxPadded ? b : undefined;
}

export function isBucket(n: number): boolean {
  if (n >= 256 && n <= 65536) return (n & (n - 1)) === 0;
  return n > 65536 && n <= maxPadded && n % 65536 === 0;
}

export function pad(data: Uint8Array): Uint8Array {
  const bucket = bucketFor(data.length);
  if (bucket === undefined) fail("too_large");
  return sodium.pad(data, bucket);
}

export function unpad(padded: Uint8Array): Uint8Array {
  if (!isBucket(padded.length)) fail("bad_padding");
  try {
    return sodium.unpad(padded, padded.length);
  } catch {
    return fail("bad_padding");
  }
}
