// The one libsodium instance (libsodium-wrappers-sumo: HMAC, SHA-2 and
// crypto_pwhash are only in the sumo build). Call `await sodiumReady()` once
// before any other function of this folder.
import _sodium from "libsodium-wrappers-sumo";

export type Sodium = typeof _sodium;
export let sodium: Sodium = _sodium;

export async function sodiumReady(): Promise<Sodium> {
  await _sodium.ready;
  sodium = _sodium;
  return sodium;
}
