// Errors named like haven::crypto::errc (docs/PROTOCOL.md section 12), so
// the vector files' `error` fields can be compared by name.
export type CryptoErrc =
  | "invalid_argument"
  | "malformed_message"
  | "unsupported_version"
  | "bad_signature"
  | "weak_key"
  | "decryption_failed"
  | "duplicate_message"
  | "too_many_skipped"
  | "no_sending_chain"
  | "session_mismatch"
  | "missing_prekey"
  | "identity_mismatch"
  | "unknown_sender_chain"
  | "bad_padding"
  | "too_large"
  | "weak_parameters"
  | "wrong_passphrase"
  | "out_of_memory";

export class CryptoError extends Error {
  constructor(readonly code: CryptoErrc) {
    super(code);
    this.name = "CryptoError";
  }
}

export function fail(code: CryptoErrc): never {
  throw new CryptoError(code);
}
