// docs/PROTOCOL.md section 11.
export const labels = {
  identityDh: "haven-identity-dh-v1",
  prekey: "haven-prekey-v1",
  x3dh: "haven-x3dh-v1",
  ratchet: "haven-ratchet-v1",
  messageKeys: "haven-message-keys-v1",
  sealEphemeral: "haven-seal-ephemeral-v1",
  sealStatic: "haven-seal-static-v1",
  senderCertificate: "haven-sender-cert-v1",
  senderKey: "haven-sender-key-v1",
  senderKeyMessageKeys: "haven-sender-key-message-keys-v1",
  safetyNumber: "haven-safety-number-v1",
  vault: "haven-vault-v1",
  vaultAuth: "haven-vault-auth-v1",
  vaultEnc: "haven-vault-enc-v1",
  auth: "haven-auth-v1",
  register: "haven-register-v1",
} as const;
