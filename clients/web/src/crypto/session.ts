// X3DH and the Double Ratchet (docs/PROTOCOL.md sections 3 and 4), a
// transcription of crypto/src/session.cpp. Decrypt works on copies and
// commits only after the AEAD opens.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { concat, equal, hex, u32, u8 } from "./bytes";
import { CryptoError, fail } from "./errors";
import {
  encodeIdentity,
  IdentityKeyPair,
  identityFromWire,
  identityToWire,
  PrekeyBundle,
  PublicIdentity,
  SignedPrekeyPair,
  X25519KeyPair,
  x25519FromSecret,
  x25519Generate,
} from "./identity";
import { labels } from "./labels";
import { aeadOpen, aeadSeal, hkdf, hmacSha256, isLowOrder, x25519 } from "./primitives";
import { RandomSource } from "./random";
import {
  ChainStateSchema,
  PrekeyMessageSchema,
  RatchetMessage,
  RatchetMessageSchema,
  SessionStateSchema,
  SkippedKeySchema,
} from "../gen/e2e_pb";
import { PrekeyKind } from "../gen/wire_pb";

export interface RatchetLimits {
  maxSkip: number;
  maxStored: number;
}
export const defaultLimits: RatchetLimits = { maxSkip: 2000, maxStored: 2000 };

export type MessageType = "prekey" | "ratchet";
export interface EncryptedMessage {
  type: MessageType;
  bytes: Uint8Array;
}

export interface PrekeyHeader {
  initiator: PublicIdentity;
  baseKey: Uint8Array;
  signedPrekeyId: number;
  oneTimeKind: PrekeyKind;
  oneTimeId: number;
}

interface Chain {
  key: Uint8Array;
  index: number;
}

const ONE = u8(1);
const TWO = u8(2);

function kdfRk(root: Uint8Array, dhOut: Uint8Array) {
  const okm = hkdf(root, dhOut, labels.ratchet, 64);
  return { root: okm.slice(0, 32), chain: okm.slice(32) };
}

export function kdfCk(ck: Uint8Array) {
  return { messageKey: hmacSha256(ck, ONE), nextChain: hmacSha256(ck, TWO) };
}

export function messageAead(mk: Uint8Array, info: string) {
  const okm = hkdf(new Uint8Array(0), mk, info, 56);
  return { key: okm.slice(0, 32), nonce: okm.slice(32) };
}

function x3dhSecret(dhs: Uint8Array[]): Uint8Array {
  return hkdf(new Uint8Array(32), concat(new Uint8Array(32).fill(0xff), ...dhs), labels.x3dh, 32);
}

function sessionAd(initiator: PublicIdentity, responder: PublicIdentity) {
  return concat(encodeIdentity(initiator), encodeIdentity(responder));
}

function headerAd(ad: Uint8Array, ratchetKey: Uint8Array, counter: number, previous: number) {
  return concat(ad, ratchetKey, u32(counter), u32(previous));
}

function skippedId(ratchetKey: Uint8Array, counter: number) {
  return `${hex(ratchetKey)}:${counter}`;
}

export function parsePrekeyMessage(bytes: Uint8Array): PrekeyHeader {
  let m;
  try {
    m = fromBinary(PrekeyMessageSchema, bytes);
  } catch {
    return fail("malformed_message");
  }
  const initiator = identityFromWire(m.initiator);
  if (m.baseKey.length !== 32) fail("invalid_argument");
  if (
    m.oneTimeKind !== PrekeyKind.UNSPECIFIED &&
    m.oneTimeKind !== PrekeyKind.ONE_TIME &&
    m.oneTimeKind !== PrekeyKind.LAST_RESORT
  )
    fail("invalid_argument");
  if (isLowOrder(m.baseKey)) fail("weak_key");
  return {
    initiator,
    baseKey: m.baseKey,
    signedPrekeyId: m.signedPrekeyId,
    oneTimeKind: m.oneTimeKind,
    oneTimeId: m.oneTimeId,
  };
}

interface SkippedEntry {
  ratchetKey: Uint8Array;
  counter: number;
  key: Uint8Array;
}

export class Session {
  private constructor(
    private limits: RatchetLimits,
    readonly local: PublicIdentity,
    readonly remote: PublicIdentity,
    private ad: Uint8Array,
    private root: Uint8Array,
    private ratchet: X25519KeyPair,
    private remoteRatchet: Uint8Array | undefined,
    private sending: Chain | undefined,
    private receiving: Chain | undefined,
    private previousCounter: number,
    private skipped: Map<string, SkippedEntry>,
    readonly baseKey: Uint8Array,
    readonly initiator: boolean,
    private pending: PrekeyHeader | undefined,
  ) {}

  get awaitingReply(): boolean {
    return this.pending !== undefined;
  }

  static initiate(
    self: IdentityKeyPair,
    bundle: PrekeyBundle,
    random: RandomSource,
    limits: RatchetLimits = defaultLimits,
  ): Session {
    const base = x25519Generate(random);
    const spk = bundle.signedPrekey.publicKey;
    let kind = PrekeyKind.UNSPECIFIED;
    let oneTimeId = 0;
    let oneTime: Uint8Array | undefined;
    if (bundle.oneTime) {
      kind = PrekeyKind.ONE_TIME;
      oneTimeId = bundle.oneTime.id;
      oneTime = bundle.oneTime.publicKey;
    } else if (bundle.lastResort) {
      kind = PrekeyKind.LAST_RESORT;
      oneTimeId = bundle.lastResort.id;
      oneTime = bundle.lastResort.publicKey;
    }
    const dhs = [x25519(self.dhSecret, spk), x25519(base.secret, bundle.identity.dhKey), x25519(base.secret, spk)];
    if (oneTime) dhs.push(x25519(base.secret, oneTime));
    const sk = x3dhSecret(dhs);
    const ratchet = x25519Generate(random);
    const rc = kdfRk(sk, x25519(ratchet.secret, spk));
    return new Session(
      limits,
      self.pub,
      bundle.identity,
      sessionAd(self.pub, bundle.identity),
      rc.root,
      ratchet,
      spk.slice(),
      { key: rc.chain, index: 0 },
      undefined,
      0,
      new Map(),
      base.publicKey,
      true,
      { initiator: self.pub, baseKey: base.publicKey, signedPrekeyId: bundle.signedPrekey.id, oneTimeKind: kind, oneTimeId },
    );
  }

  static respond(
    self: IdentityKeyPair,
    spk: SignedPrekeyPair,
    oneTimeKey: X25519KeyPair | undefined,
    message: PrekeyHeader,
    limits: RatchetLimits = defaultLimits,
  ): Session {
    if (spk.id !== message.signedPrekeyId || spk.kind !== PrekeyKind.SIGNED) fail("invalid_argument");
    if (message.oneTimeKind !== PrekeyKind.UNSPECIFIED && !oneTimeKey) fail("missing_prekey");
    if (message.oneTimeKind === PrekeyKind.UNSPECIFIED && oneTimeKey) fail("invalid_argument");
    const dhs = [
      x25519(spk.key.secret, message.initiator.dhKey),
      x25519(self.dhSecret, message.baseKey),
      x25519(spk.key.secret, message.baseKey),
    ];
    if (oneTimeKey) dhs.push(x25519(oneTimeKey.secret, message.baseKey));
    const sk = x3dhSecret(dhs);
    return new Session(
      limits,
      self.pub,
      message.initiator,
      sessionAd(message.initiator, self.pub),
      sk,
      x25519FromSecret(spk.key.secret),
      undefined,
      undefined,
      undefined,
      0,
      new Map(),
      message.baseKey.slice(),
      false,
      undefined,
    );
  }

  encrypt(plaintext: Uint8Array): EncryptedMessage {
    if (!this.sending) fail("no_sending_chain");
    if (this.sending.index === 0xffffffff) fail("too_many_skipped");
    const step = kdfCk(this.sending.key);
    const counter = this.sending.index;
    const params = messageAead(step.messageKey, labels.messageKeys);
    const ad = headerAd(this.ad, this.ratchet.publicKey, counter, this.previousCounter);
    const rm = create(RatchetMessageSchema, {
      ratchetKey: this.ratchet.publicKey,
      counter,
      previousCounter: this.previousCounter,
      ciphertext: aeadSeal(params.key, params.nonce, ad, plaintext),
    });
    let out: EncryptedMessage;
    if (this.pending) {
      const p = this.pending;
      const pm = create(PrekeyMessageSchema, {
        initiator: identityToWire(p.initiator),
        baseKey: p.baseKey,
        signedPrekeyId: p.signedPrekeyId,
        oneTimeKind: p.oneTimeKind,
        oneTimeId: p.oneTimeId,
        message: rm,
      });
      out = { type: "prekey", bytes: toBinary(PrekeyMessageSchema, pm) };
    } else {
      out = { type: "ratchet", bytes: toBinary(RatchetMessageSchema, rm) };
    }
    this.sending.key.fill(0);
    this.sending = { key: step.nextChain, index: counter + 1 };
    step.messageKey.fill(0);
    return out;
  }

  decrypt(message: EncryptedMessage, random: RandomSource): Uint8Array {
    let rm: RatchetMessage;
    if (message.type === "prekey") {
      let pm;
      try {
        pm = fromBinary(PrekeyMessageSchema, message.bytes);
      } catch {
        return fail("malformed_message");
      }
      if (pm.baseKey.length !== 32) fail("malformed_message");
      if (
        this.initiator ||
        !equal(pm.baseKey, this.baseKey) ||
        !pm.initiator ||
        !equal(pm.initiator.signingKey, this.remote.signingKey) ||
        !equal(pm.initiator.dhKey, this.remote.dhKey)
      )
        fail("session_mismatch");
      rm = pm.message ?? create(RatchetMessageSchema);
    } else {
      try {
        rm = fromBinary(RatchetMessageSchema, message.bytes);
      } catch {
        return fail("malformed_message");
      }
    }
    if (rm.ratchetKey.length !== 32 || rm.ciphertext.length < 16) fail("malformed_message");
    const rk = rm.ratchetKey;
    const counter = rm.counter;
    const previous = rm.previousCounter;
    const ad = headerAd(this.ad, rk, counter, previous);
    const openWith = (mk: Uint8Array) => {
      const p = messageAead(mk, labels.messageKeys);
      return aeadOpen(p.key, p.nonce, ad, rm.ciphertext);
    };

    // 1. A key we skipped earlier.
    const sid = skippedId(rk, counter);
    const stored = this.skipped.get(sid);
    if (stored) {
      const plain = openWith(stored.key);
      stored.key.fill(0);
      this.skipped.delete(sid);
      this.pending = undefined;
      return plain;
    }

    const newSkipped: SkippedEntry[] = [];
    const skipTo = (ratchetKey: Uint8Array, c: Chain, until: number) => {
      while (c.index < until) {
        const step = kdfCk(c.key);
        newSkipped.push({ ratchetKey, counter: c.index, key: step.messageKey });
        c.key = step.nextChain;
        c.index++;
      }
    };

    // 2. The current receiving chain.
    if (this.remoteRatchet && equal(rk, this.remoteRatchet)) {
      if (!this.receiving) fail("decryption_failed");
      if (counter < this.receiving.index) fail("duplicate_message");
      if (counter - this.receiving.index > this.limits.maxSkip) fail("too_many_skipped");
      const c: Chain = { key: this.receiving.key, index: this.receiving.index };
      skipTo(rk, c, counter);
      const step = kdfCk(c.key);
      const plain = openWith(step.messageKey);
      this.receiving = { key: step.nextChain, index: c.index + 1 };
      for (const s of newSkipped) this.storeSkipped(s);
      this.pending = undefined;
      return plain;
    }

    // 3. A new ratchet key: a DH ratchet step, in locals.
    if (
      this.receiving &&
      previous > this.receiving.index &&
      previous - this.receiving.index > this.limits.maxSkip
    )
      fail("too_many_skipped");
    if (counter > this.limits.maxSkip) fail("too_many_skipped");
    if (this.receiving && this.remoteRatchet) {
      const old: Chain = { key: this.receiving.key, index: this.receiving.index };
      skipTo(this.remoteRatchet, old, previous);
    }
    const rc1 = kdfRk(this.root, x25519(this.ratchet.secret, rk));
    const recv: Chain = { key: rc1.chain, index: 0 };
    skipTo(rk.slice(), recv, counter);
    const step = kdfCk(recv.key);
    const plain = openWith(step.messageKey);
    // Authenticated: draw our next ratchet key and commit.
    const next = x25519Generate(random);
    const rc2 = kdfRk(rc1.root, x25519(next.secret, rk));
    this.previousCounter = this.sending ? this.sending.index : 0;
    this.sending = { key: rc2.chain, index: 0 };
    this.receiving = { key: step.nextChain, index: counter + 1 };
    this.root = rc2.root;
    this.ratchet.secret.fill(0);
    this.ratchet = next;
    this.remoteRatchet = rk.slice();
    for (const s of newSkipped) this.storeSkipped(s);
    this.pending = undefined;
    return plain;
  }

  private storeSkipped(s: SkippedEntry) {
    const id = skippedId(s.ratchetKey, s.counter);
    this.skipped.delete(id);
    this.skipped.set(id, s);
    while (this.skipped.size > this.limits.maxStored) {
      const oldest = this.skipped.keys().next().value as string;
      this.skipped.get(oldest)?.key.fill(0);
      this.skipped.delete(oldest);
    }
  }

  serialize(): Uint8Array {
    const s = create(SessionStateSchema, {
      version: 1,
      localIdentity: identityToWire(this.local),
      remoteIdentity: identityToWire(this.remote),
      rootKey: this.root,
      ratchetSecret: this.ratchet.secret,
      remoteRatchetKey: this.remoteRatchet ?? new Uint8Array(0),
      sending: this.sending ? create(ChainStateSchema, { key: this.sending.key, index: this.sending.index }) : undefined,
      receiving: this.receiving
        ? create(ChainStateSchema, { key: this.receiving.key, index: this.receiving.index })
        : undefined,
      previousCounter: this.previousCounter,
      skipped: [...this.skipped.values()].map((k) =>
        create(SkippedKeySchema, { ratchetKey: k.ratchetKey, counter: k.counter, messageKey: k.key }),
      ),
      baseKey: this.baseKey,
      initiator: this.initiator,
      pendingPrekey: this.pending
        ? create(PrekeyMessageSchema, {
            initiator: identityToWire(this.pending.initiator),
            baseKey: this.pending.baseKey,
            signedPrekeyId: this.pending.signedPrekeyId,
            oneTimeKind: this.pending.oneTimeKind,
            oneTimeId: this.pending.oneTimeId,
          })
        : undefined,
    });
    return toBinary(SessionStateSchema, s);
  }

  static deserialize(bytes: Uint8Array, limits: RatchetLimits = defaultLimits): Session {
    let s;
    try {
      s = fromBinary(SessionStateSchema, bytes);
    } catch {
      return fail("malformed_message");
    }
    if (s.version !== 1) fail("unsupported_version");
    const local = identityFromWire(s.localIdentity);
    const remote = identityFromWire(s.remoteIdentity);
    const need32 = (b: Uint8Array) => {
      if (b.length !== 32) throw new CryptoError("invalid_argument");
      return b;
    };
    const skipped = new Map<string, SkippedEntry>();
    for (const k of s.skipped)
      skipped.set(skippedId(k.ratchetKey, k.counter), {
        ratchetKey: need32(k.ratchetKey),
        counter: k.counter,
        key: need32(k.messageKey),
      });
    const p = s.pendingPrekey;
    return new Session(
      limits,
      local,
      remote,
      s.initiator ? sessionAd(local, remote) : sessionAd(remote, local),
      need32(s.rootKey),
      x25519FromSecret(need32(s.ratchetSecret)),
      s.remoteRatchetKey.length ? need32(s.remoteRatchetKey) : undefined,
      s.sending ? { key: need32(s.sending.key), index: s.sending.index } : undefined,
      s.receiving ? { key: need32(s.receiving.key), index: s.receiving.index } : undefined,
      s.previousCounter,
      skipped,
      need32(s.baseKey),
      s.initiator,
      p
        ? {
            initiator: local,
            baseKey: need32(p.baseKey),
            signedPrekeyId: p.signedPrekeyId,
            oneTimeKind: p.oneTimeKind,
            oneTimeId: p.oneTimeId,
          }
        : undefined,
    );
  }

  /** Overwrites the secrets this object holds (quick exit, lock). */
  wipe(): void {
    this.root.fill(0);
    this.ratchet.secret.fill(0);
    this.sending?.key.fill(0);
    this.receiving?.key.fill(0);
    for (const k of this.skipped.values()) k.key.fill(0);
    this.skipped.clear();
  }
}
