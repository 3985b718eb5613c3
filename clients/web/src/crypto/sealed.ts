// Sealed sender (docs/PROTOCOL.md section 6), after crypto/src/sealed_sender.cpp.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { ascii, concat, u32, u8 } from "./bytes";
import { fail } from "./errors";
import { IdentityKeyPair, identityFromWire, identityToWire, PublicIdentity, sameIdentity, x25519Generate } from "./identity";
import { labels } from "./labels";
import { aeadOpen, aeadSeal, hkdf, pad, sign, unpad, verify, x25519 } from "./primitives";
import { RandomSource } from "./random";
import { sodium } from "./sodium";
import { parsePrekeyMessage } from "./session";
import { ContentType, SealedContentSchema, SenderCertificate, SenderCertificateSchema } from "../gen/e2e_pb";

export const sealedVersion = 1;

export interface SenderCert {
  identity: PublicIdentity;
  mailbox: Uint8Array; // 16
  deviceId: number;
  signature: Uint8Array;
}

function certificateBytes(id: PublicIdentity, mailbox: Uint8Array, deviceId: number) {
  return concat(ascii(labels.senderCertificate), id.signingKey, id.dhKey, mailbox, u32(deviceId));
}

export function issueCertificate(identity: IdentityKeyPair, mailbox: Uint8Array, deviceId: number): SenderCert {
  return {
    identity: identity.pub,
    mailbox: mailbox.slice(),
    deviceId,
    signature: sign(identity.signing, certificateBytes(identity.pub, mailbox, deviceId)),
  };
}

export function certificateToWire(c: SenderCert): SenderCertificate {
  return create(SenderCertificateSchema, {
    identity: identityToWire(c.identity),
    mailboxId: c.mailbox,
    deviceId: c.deviceId,
    signature: c.signature,
  });
}

export function certificateFromWire(w: SenderCertificate | undefined): SenderCert {
  if (!w) return fail("invalid_argument");
  const identity = identityFromWire(w.identity);
  if (w.mailboxId.length !== 16 || w.signature.length !== 64) fail("invalid_argument");
  if (!verify(identity.signingKey, certificateBytes(identity, w.mailboxId, w.deviceId), w.signature))
    fail("bad_signature");
  return { identity, mailbox: w.mailboxId, deviceId: w.deviceId, signature: w.signature };
}

function deriveEphemeral(ePub: Uint8Array, recipient: PublicIdentity, shared: Uint8Array) {
  const okm = hkdf(concat(ePub, recipient.dhKey), shared, labels.sealEphemeral, 88);
  return { key: okm.slice(0, 32), nonce: okm.slice(32, 56), chain: okm.slice(56) };
}

function deriveStatic(chain: Uint8Array, shared: Uint8Array) {
  const okm = hkdf(chain, shared, labels.sealStatic, 56);
  return { key: okm.slice(0, 32), nonce: okm.slice(32) };
}

const staticAd = (e: Uint8Array, r: PublicIdentity) => concat(u8(sealedVersion), e, r.signingKey, r.dhKey);
const contentAd = (e: Uint8Array, cStatic: Uint8Array, r: PublicIdentity) =>
  concat(u8(sealedVersion), e, cStatic, r.signingKey, r.dhKey);

export function seal(
  sender: IdentityKeyPair,
  cert: SenderCert,
  recipient: PublicIdentity,
  type: ContentType,
  message: Uint8Array,
  random: RandomSource,
): Uint8Array {
  if (!sameIdentity(cert.identity, sender.pub)) fail("invalid_argument");
  const content = toBinary(
    SealedContentSchema,
    create(SealedContentSchema, { sender: certificateToWire(cert), type, message }),
  );
  const padded = pad(content);
  const e = x25519Generate(random);
  const k1 = deriveEphemeral(e.publicKey, recipient, x25519(e.secret, recipient.dhKey));
  const cStatic = aeadSeal(k1.key, k1.nonce, staticAd(e.publicKey, recipient), sender.pub.dhKey);
  const k2 = deriveStatic(k1.chain, x25519(sender.dhSecret, recipient.dhKey));
  const cContent = aeadSeal(k2.key, k2.nonce, contentAd(e.publicKey, cStatic, recipient), padded);
  e.secret.fill(0);
  padded.fill(0);
  return concat(u8(sealedVersion), e.publicKey, cStatic, cContent);
}

export interface OpenedEnvelope {
  sender: SenderCert;
  type: ContentType;
  message: Uint8Array;
}

export function openSealed(recipient: IdentityKeyPair, sealed: Uint8Array): OpenedEnvelope {
  if (sealed.length === 0) fail("malformed_message");
  if (sealed[0] !== sealedVersion) fail("unsupported_version");
  const headerSize = 1 + 32 + 48;
  if (sealed.length < headerSize + 16) fail("malformed_message");
  const ePub = sealed.slice(1, 33);
  const cStatic = sealed.slice(33, headerSize);
  const cContent = sealed.slice(headerSize);
  const me = recipient.pub;
  const k1 = deriveEphemeral(ePub, me, x25519(recipient.dhSecret, ePub));
  const senderDh = aeadOpen(k1.key, k1.nonce, staticAd(ePub, me), cStatic);
  const k2 = deriveStatic(k1.chain, x25519(recipient.dhSecret, senderDh));
  const padded = aeadOpen(k2.key, k2.nonce, contentAd(ePub, cStatic, me), cContent);
  const plain = unpad(padded);
  let content;
  try {
    content = fromBinary(SealedContentSchema, plain);
  } catch {
    return fail("malformed_message");
  }
  const cert = certificateFromWire(content.sender);
  if (!sodium.memcmp(cert.identity.dhKey, senderDh)) fail("identity_mismatch");
  switch (content.type) {
    case ContentType.PREKEY_MESSAGE: {
      const header = parsePrekeyMessage(content.message);
      if (!sameIdentity(header.initiator, cert.identity)) fail("identity_mismatch");
      break;
    }
    case ContentType.RATCHET_MESSAGE:
    case ContentType.SENDER_KEY_MESSAGE:
      break;
    default:
      fail("malformed_message");
  }
  return { sender: cert, type: content.type, message: content.message };
}
