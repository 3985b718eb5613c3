// Replays every known-answer file in tests/vectors/ (the same files the C++
// crypto tests pass): `npm test`, or CTest's web_vectors.
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { ascii, concat, fromHex, hex } from "../src/crypto/bytes";
import { CryptoError } from "../src/crypto/errors";
import { identityFromSecrets, x25519FromSecret } from "../src/crypto/identity";
import {
  aeadOpen,
  aeadSeal,
  bucketFor,
  hkdf,
  hkdfExpand,
  hkdfExtract,
  pad,
  sign,
  signingFromSeed,
  unpad,
  verify,
  x25519,
} from "../src/crypto/primitives";
import { replayRandom } from "../src/crypto/random";
import { safetyNumber, fingerprintDigits, formatSafetyNumber } from "../src/crypto/safety_number";
import { certificateFromWire, issueCertificate, openSealed, seal } from "../src/crypto/sealed";
import { GroupReceiver, GroupSender } from "../src/crypto/sender_keys";
import { EncryptedMessage, parsePrekeyMessage, Session } from "../src/crypto/session";
import { sodiumReady } from "../src/crypto/sodium";
import {
  deriveVaultKeys,
  encodeVaultHeader,
  openVault,
  readVaultHeader,
  sealVault,
  vaultAuthVerifier,
} from "../src/crypto/vault";
import { PrekeyKind } from "../src/gen/wire_pb";

const dir = resolve(process.env.HAVEN_VECTORS_DIR ?? join(__dirname, "../../../tests/vectors"));
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const load = (name: string): any => JSON.parse(readFileSync(join(dir, name), "utf8"));
const h = fromHex;

function errorOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof CryptoError) return e.code;
    throw e;
  }
  return "no error";
}

beforeAll(async () => {
  await sodiumReady();
});

const covered = [
  "ed25519.json",
  "hkdf_sha256.json",
  "padding.json",
  "safety_number.json",
  "sealed_sender.json",
  "sender_keys.json",
  "vault.json",
  "x25519.json",
  "x3dh_ratchet.json",
  "xchacha20poly1305.json",
];

describe("tests/vectors", () => {
  it("every vector file is replayed by this test", () => {
    const files = readdirSync(dir).filter((f) => f.endsWith(".json")).sort();
    expect(files).toEqual(covered);
  });

  it("hkdf_sha256.json: RFC 5869 extract and expand", () => {
    const v = load("hkdf_sha256.json");
    for (const c of v.cases) {
      expect(hex(hkdfExtract(h(c.salt), h(c.ikm)))).toBe(c.prk);
      expect(hex(hkdfExpand(h(c.prk), h(c.info), c.length))).toBe(c.okm);
      expect(hex(hkdf(h(c.salt), h(c.ikm), h(c.info), c.length))).toBe(c.okm);
    }
  });

  it("x25519.json: RFC 7748 multiplication, iteration, DH, low-order keys refused", () => {
    const v = load("x25519.json");
    for (const c of v.scalar_multiplication) expect(hex(x25519(h(c.scalar), h(c.u)))).toBe(c.output);
    for (const c of v.iterated_from_9) {
      let k: Uint8Array = new Uint8Array(32);
      k[0] = 9;
      let u: Uint8Array = k.slice();
      for (let i = 0; i < c.iterations; i++) {
        const out = x25519(k, u);
        u = k;
        k = out;
      }
      expect(hex(k)).toBe(c.output);
    }
    for (const c of v.diffie_hellman) {
      expect(hex(x25519FromSecret(h(c.alice_private)).publicKey)).toBe(c.alice_public);
      expect(hex(x25519FromSecret(h(c.bob_private)).publicKey)).toBe(c.bob_public);
      expect(hex(x25519(h(c.alice_private), h(c.bob_public)))).toBe(c.shared);
      expect(hex(x25519(h(c.bob_private), h(c.alice_public)))).toBe(c.shared);
    }
    const scalar = h(v.diffie_hellman[0].alice_private);
    for (const c of v.low_order) expect(errorOf(() => x25519(scalar, h(c.public_key)))).toBe(c.error);
  });

  it("ed25519.json: RFC 8032 keys and signatures", () => {
    const v = load("ed25519.json");
    for (const c of v.cases) {
      const k = signingFromSeed(h(c.secret_key));
      expect(hex(k.publicKey)).toBe(c.public_key);
      expect(hex(sign(k, h(c.message)))).toBe(c.signature);
      expect(verify(k.publicKey, h(c.message), h(c.signature))).toBe(true);
      const bad = h(c.signature);
      bad[0] ^= 1;
      expect(verify(k.publicKey, h(c.message), bad)).toBe(false);
    }
  });

  it("xchacha20poly1305.json: AEAD seal and open, a changed byte refused", () => {
    const v = load("xchacha20poly1305.json");
    for (const c of v.cases) {
      const ct = aeadSeal(h(c.key), h(c.nonce), h(c.aad), h(c.plaintext));
      expect(hex(ct)).toBe(c.ciphertext);
      expect(hex(aeadOpen(h(c.key), h(c.nonce), h(c.aad), ct))).toBe(c.plaintext);
      ct[3] ^= 1;
      expect(errorOf(() => aeadOpen(h(c.key), h(c.nonce), h(c.aad), ct))).toBe("decryption_failed");
    }
  });

  it("padding.json: buckets, the example, too large refused", () => {
    const v = load("padding.json");
    for (const c of v.sizes) {
      expect(bucketFor(c.length)).toBe(c.padded_length);
      expect(pad(new Uint8Array(c.length)).length).toBe(c.padded_length);
    }
    for (const c of v.examples) {
      expect(hex(pad(h(c.data)))).toBe(c.padded);
      expect(hex(unpad(h(c.padded)))).toBe(c.data);
    }
    expect(errorOf(() => pad(new Uint8Array(v.too_large_length)))).toBe("too_large");
    expect(errorOf(() => unpad(new Uint8Array(300)))).toBe("bad_padding");
    expect(errorOf(() => unpad(new Uint8Array(256)))).toBe("bad_padding");
  });

  it("safety_number.json: digits per identity and the 60-digit number", () => {
    const v = load("safety_number.json");
    const a = { signingKey: h(v.a.signing_key), dhKey: h(v.a.dh_key), dhKeySignature: new Uint8Array(64) };
    const b = { signingKey: h(v.b.signing_key), dhKey: h(v.b.dh_key), dhKeySignature: new Uint8Array(64) };
    expect(fingerprintDigits(a)).toBe(v.a.digits);
    expect(fingerprintDigits(b)).toBe(v.b.digits);
    expect(safetyNumber(a, b)).toBe(v.safety_number);
    expect(safetyNumber(b, a)).toBe(v.safety_number);
    expect(formatSafetyNumber(v.safety_number)).toBe(v.display);
  });

  it("sealed_sender.json: seal byte for byte, open, another recipient refused", () => {
    const v = load("sealed_sender.json");
    const id = (x: { signing_seed: string; dh_secret: string }) => identityFromSecrets(h(x.signing_seed), h(x.dh_secret));
    const sender = id(v.sender);
    const recipient = id(v.recipient);
    expect(hex(sender.pub.signingKey)).toBe(v.sender.signing_key);
    expect(hex(sender.pub.dhKey)).toBe(v.sender.dh_key);
    expect(hex(sender.pub.dhKeySignature)).toBe(v.sender.dh_key_signature);
    expect(hex(recipient.pub.dhKeySignature)).toBe(v.recipient.dh_key_signature);
    const cert = issueCertificate(sender, h(v.certificate.mailbox_id), v.certificate.device_id);
    expect(hex(cert.signature)).toBe(v.certificate.signature);
    const sealed = seal(sender, cert, recipient.pub, v.content_type, h(v.message), replayRandom(v.random_draws.map(h)));
    expect(hex(sealed)).toBe(v.sealed);
    const opened = openSealed(recipient, h(v.sealed));
    expect(hex(opened.message)).toBe(v.message);
    expect(opened.type).toBe(v.content_type);
    expect(hex(opened.sender.mailbox)).toBe(v.certificate.mailbox_id);
    expect(opened.sender.deviceId).toBe(v.certificate.device_id);
    expect(hex(opened.sender.identity.signingKey)).toBe(v.sender.signing_key);
    const other = id(v.other_recipient.identity);
    expect(errorOf(() => openSealed(other, h(v.sealed)))).toBe(v.other_recipient.error);
    const tampered = h(v.sealed);
    tampered[tampered.length - 1] ^= 1;
    expect(errorOf(() => openSealed(recipient, tampered))).toBe("decryption_failed");
    expect(certificateFromWire).toBeTypeOf("function");
  });

  it("sender_keys.json: chain messages byte for byte, out of order, rotation refuses the old chain", () => {
    const v = load("sender_keys.json");
    const random = replayRandom(v.random_draws.map(h));
    const sender = GroupSender.create(h(v.distribution_id), random);
    expect(hex(sender.distributionMessage())).toBe(v.distribution_message);
    const sent = v.messages.map((m: { plaintext: string }) => sender.encrypt(h(m.plaintext)));
    v.messages.forEach((m: { message: string }, i: number) => expect(hex(sent[i])).toBe(m.message));
    const receiver = GroupReceiver.fromDistribution(h(v.distribution_message));
    for (const i of v.receive_order) expect(hex(receiver.decrypt(h(v.messages[i].message)))).toBe(v.messages[i].plaintext);
    expect(errorOf(() => receiver.decrypt(h(v.messages[0].message)))).toBe("duplicate_message");
    const rotated = GroupSender.create(h(v.distribution_id), random);
    expect(hex(rotated.distributionMessage())).toBe(v.rotation.distribution_message);
    expect(hex(rotated.encrypt(h(v.rotation.plaintext)))).toBe(v.rotation.message);
    expect(errorOf(() => receiver.decrypt(h(v.rotation.message)))).toBe(v.rotation.error);
    const fresh = GroupReceiver.fromDistribution(h(v.rotation.distribution_message));
    expect(hex(fresh.decrypt(h(v.rotation.message)))).toBe(v.rotation.plaintext);
  });

  it("vault.json: Argon2id keys, verifier, sealed vault byte for byte, wrong passphrase refused", () => {
    const v = load("vault.json");
    const random = replayRandom(v.random_draws.map(h));
    const header = { salt: random(16), opslimit: v.opslimit, memlimit: v.memlimit };
    expect(hex(header.salt)).toBe(v.salt);
    const keys = deriveVaultKeys(h(v.passphrase), header);
    expect(hex(keys.authKey)).toBe(v.k_auth);
    expect(hex(keys.encKey)).toBe(v.k_enc);
    expect(hex(vaultAuthVerifier(keys))).toBe(v.auth_verifier);
    const sealed = sealVault(keys, h(v.contents), random);
    expect(hex(sealed)).toBe(v.sealed);
    const read = readVaultHeader(h(v.sealed));
    expect(hex(read.salt)).toBe(v.salt);
    expect(hex(readVaultHeader(encodeVaultHeader(read)).salt)).toBe(v.salt);
    expect(hex(openVault(deriveVaultKeys(h(v.passphrase), read), h(v.sealed)))).toBe(v.contents);
    const wrong = deriveVaultKeys(h(v.wrong_passphrase.passphrase), read);
    expect(errorOf(() => openVault(wrong, h(v.sealed)))).toBe(v.wrong_passphrase.error);
    expect(errorOf(() => deriveVaultKeys(h(v.passphrase), { ...read, opslimit: 1 }))).toBe("weak_parameters");
  }, 60_000);

  it("x3dh_ratchet.json: the transcript byte for byte, out of order, tampered and replayed refused", () => {
    const v = load("x3dh_ratchet.json");
    const alice = identityFromSecrets(h(v.alice.identity.signing_seed), h(v.alice.identity.dh_secret));
    const bob = identityFromSecrets(h(v.bob.identity.signing_seed), h(v.bob.identity.dh_secret));
    expect(hex(alice.pub.dhKeySignature)).toBe(v.alice.identity.dh_key_signature);
    const spk = {
      id: v.bob.signed_prekey.id,
      kind: PrekeyKind.SIGNED,
      key: x25519FromSecret(h(v.bob.signed_prekey.secret)),
      signature: h(v.bob.signed_prekey.signature),
    };
    expect(hex(spk.key.publicKey)).toBe(v.bob.signed_prekey.public_key);
    const otk = x25519FromSecret(h(v.bob.one_time_prekey.secret));
    expect(hex(otk.publicKey)).toBe(v.bob.one_time_prekey.public_key);
    const random = { alice: replayRandom(v.alice.random_draws.map(h)), bob: replayRandom(v.bob.random_draws.map(h)) };
    const sessions: Record<string, Session> = {
      alice: Session.initiate(
        alice,
        {
          identity: bob.pub,
          signedPrekey: { id: spk.id, publicKey: spk.key.publicKey },
          oneTime: { id: v.bob.one_time_prekey.id, publicKey: otk.publicKey },
        },
        random.alice,
      ),
    };
    expect(hex(concat(alice.pub.signingKey, alice.pub.dhKey, bob.pub.signingKey, bob.pub.dhKey))).toBe(v.associated_data);
    const messages: EncryptedMessage[] = [];
    for (const s of v.steps) {
      const party = s.party as "alice" | "bob";
      if (s.op === "encrypt") {
        const m = sessions[party].encrypt(h(s.plaintext));
        expect(m.type).toBe(s.message_type);
        expect(hex(m.bytes)).toBe(s.message);
        messages[s.message_index] = m;
      } else if (s.op === "respond") {
        const header = parsePrekeyMessage(messages[s.message_index].bytes);
        sessions[party] = Session.respond(bob, spk, otk, header);
      } else if (s.op === "decrypt") {
        const m = messages[s.message_index];
        let bytes = m.bytes;
        if (s.flip_byte !== undefined) {
          bytes = bytes.slice();
          bytes[s.flip_byte] ^= 1;
        }
        const before = hex(sessions[party].serialize());
        if (s.error) {
          expect(errorOf(() => sessions[party].decrypt({ type: m.type, bytes }, random[party]))).toBe(s.error);
          expect(hex(sessions[party].serialize())).toBe(before);
        } else {
          // A round trip through the stored form on the way, as a client would.
          const restored = Session.deserialize(sessions[party].serialize());
          expect(hex(restored.serialize())).toBe(before);
          expect(hex(restored.decrypt({ type: m.type, bytes }, random[party]))).toBe(s.plaintext);
          sessions[party] = restored;
        }
      } else {
        throw new Error(`unknown op ${s.op}`);
      }
    }
    expect(ascii("x").length).toBe(1);
  });
});
