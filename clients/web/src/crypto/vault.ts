// The passphrase key vault (docs/PROTOCOL.md section 9), after crypto/src/vault.cpp.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { ascii, concat, u32, u64 } from "./bytes";
import { fail } from "./errors";
import { labels } from "./labels";
import { aeadOpen, aeadSeal, hash256, hkdf, pad, unpad } from "./primitives";
import { RandomSource } from "./random";
import { sodium } from "./sodium";
import { SealedVaultSchema } from "../gen/e2e_pb";

export const vaultAlgorithm = 2;
export const minOps = 2;
export const maxOps = 10;
export const minMem = 64 * 1024 * 1024;
export const maxMem = 1024 * 1024 * 1024;
export const interactive = { opslimit: 2, memlimit: 67108864 };

export interface VaultHeader {
  salt: Uint8Array;
  opslimit: number;
  memlimit: number;
}

export interface VaultKeys {
  header: VaultHeader;
  authKey: Uint8Array;
  encKey: Uint8Array;
}

const withinLimits = (h: VaultHeader) =>
  h.opslimit >= minOps && h.opslimit <= maxOps && h.memlimit >= minMem && h.memlimit <= maxMem;

export function newVaultHeader(random: RandomSource, params = interactive): VaultHeader {
  return { salt: random(16), ...params };
}

export function deriveVaultKeys(passphrase: Uint8Array, header: VaultHeader): VaultKeys {
  if (!withinLimits(header) || header.salt.length !== 16) fail("weak_parameters");
  let master: Uint8Array;
  try {
    master = sodium.crypto_pwhash(
      32,
      passphrase,
      header.salt,
      header.opslimit,
      header.memlimit,
      sodium.crypto_pwhash_ALG_ARGON2ID13,
    );
  } catch {
    return fail("out_of_memory");
  }
  const authKey = hkdf(new Uint8Array(0), master, labels.vaultAuth, 32);
  const encKey = hkdf(new Uint8Array(0), master, labels.vaultEnc, 32);
  master.fill(0);
  return { header, authKey, encKey };
}

export function vaultAuthVerifier(keys: VaultKeys): Uint8Array {
  return hash256(keys.authKey);
}

function vaultAd(h: VaultHeader) {
  return concat(ascii(labels.vault), u32(vaultAlgorithm), u64(h.opslimit), u64(h.memlimit), h.salt);
}

export function sealVault(keys: VaultKeys, contents: Uint8Array, random: RandomSource): Uint8Array {
  const padded = pad(contents);
  const nonce = random(24);
  const ct = aeadSeal(keys.encKey, nonce, vaultAd(keys.header), padded);
  padded.fill(0);
  return toBinary(
    SealedVaultSchema,
    create(SealedVaultSchema, {
      version: 1,
      algorithm: vaultAlgorithm,
      opslimit: BigInt(keys.header.opslimit),
      memlimit: BigInt(keys.header.memlimit),
      salt: keys.header.salt,
      nonce,
      ciphertext: ct,
    }),
  );
}

/**
 * The clear header of a vault (also what the relay keeps for a roaming
 * vault: a SealedVault with no nonce and ciphertext, 30-40 bytes).
 */
export function readVaultHeader(sealed: Uint8Array): VaultHeader {
  let v;
  try {
    v = fromBinary(SealedVaultSchema, sealed);
  } catch {
    return fail("malformed_message");
  }
  if (v.version !== 1 || v.algorithm !== vaultAlgorithm) fail("unsupported_version");
  if (v.salt.length !== 16) fail("malformed_message");
  if (v.opslimit > BigInt(maxOps) || v.memlimit > BigInt(maxMem)) fail("weak_parameters");
  const h = { salt: v.salt, opslimit: Number(v.opslimit), memlimit: Number(v.memlimit) };
  if (!withinLimits(h)) fail("weak_parameters");
  return h;
}

export function encodeVaultHeader(h: VaultHeader): Uint8Array {
  return toBinary(
    SealedVaultSchema,
    create(SealedVaultSchema, {
      version: 1,
      algorithm: vaultAlgorithm,
      opslimit: BigInt(h.opslimit),
      memlimit: BigInt(h.memlimit),
      salt: h.salt,
    }),
  );
}

export function openVault(keys: VaultKeys, sealed: Uint8Array): Uint8Array {
  const header = readVaultHeader(sealed);
  const v = fromBinary(SealedVaultSchema, sealed);
  if (v.nonce.length !== 24) fail("malformed_message");
  let padded: Uint8Array;
  try {
    padded = aeadOpen(keys.encKey, v.nonce, vaultAd(header), v.ciphertext);
  } catch {
    return fail("wrong_passphrase");
  }
  if (
    !sodium.memcmp(keys.header.salt, header.salt) ||
    keys.header.opslimit !== header.opslimit ||
    keys.header.memlimit !== header.memlimit
  )
    fail("wrong_passphrase");
  const plain = unpad(padded);
  padded.fill(0);
  return plain;
}
