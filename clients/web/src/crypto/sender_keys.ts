// Group sender keys (docs/PROTOCOL.md section 7), after crypto/src/sender_keys.cpp.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { ascii, concat, equal, u32 } from "./bytes";
import { fail } from "./errors";
import { labels } from "./labels";
import { aeadOpen, aeadSeal, pad, sign, SigningKeyPair, signingFromSeed, unpad, verify } from "./primitives";
import { RandomSource } from "./random";
import { defaultLimits, kdfCk, messageAead, RatchetLimits } from "./session";
import { SenderKeyDistributionSchema, SenderKeyMessageSchema } from "../gen/e2e_pb";

const messageAd = (d: Uint8Array, chainId: number, i: number, signing: Uint8Array) =>
  concat(d, u32(chainId), u32(i), signing);
const signedBytes = (d: Uint8Array, chainId: number, i: number, ct: Uint8Array) =>
  concat(ascii(labels.senderKey), d, u32(chainId), u32(i), ct);

export class GroupSender {
  private constructor(
    readonly distribution: Uint8Array,
    readonly chainId: number,
    private iteration: number,
    private chainKey: Uint8Array,
    private signing: SigningKeyPair,
  ) {}

  static create(distribution: Uint8Array, random: RandomSource): GroupSender {
    const id = random(4);
    const chainId = new DataView(id.buffer, id.byteOffset, 4).getUint32(0, false);
    const chainKey = random(32);
    return new GroupSender(distribution.slice(), chainId, 0, chainKey, signingFromSeed(random(32)));
  }

  distributionMessage(): Uint8Array {
    return toBinary(
      SenderKeyDistributionSchema,
      create(SenderKeyDistributionSchema, {
        distributionId: this.distribution,
        chainId: this.chainId,
        iteration: this.iteration,
        chainKey: this.chainKey,
        signingKey: this.signing.publicKey,
      }),
    );
  }

  encrypt(plaintext: Uint8Array): Uint8Array {
    if (this.iteration === 0xffffffff) fail("too_many_skipped");
    const padded = pad(plaintext);
    const step = kdfCk(this.chainKey);
    const p = messageAead(step.messageKey, labels.senderKeyMessageKeys);
    const ct = aeadSeal(p.key, p.nonce, messageAd(this.distribution, this.chainId, this.iteration, this.signing.publicKey), padded);
    const m = create(SenderKeyMessageSchema, {
      distributionId: this.distribution,
      chainId: this.chainId,
      iteration: this.iteration,
      ciphertext: ct,
      signature: sign(this.signing, signedBytes(this.distribution, this.chainId, this.iteration, ct)),
    });
    this.chainKey = step.nextChain;
    this.iteration++;
    return toBinary(SenderKeyMessageSchema, m);
  }
}

export class GroupReceiver {
  private skipped = new Map<number, Uint8Array>();
  private constructor(
    private distribution: Uint8Array,
    private chainId: number,
    private iteration: number,
    private chainKey: Uint8Array,
    private signingPublic: Uint8Array,
    private limits: RatchetLimits,
  ) {}

  static fromDistribution(bytes: Uint8Array, limits: RatchetLimits = defaultLimits): GroupReceiver {
    let d;
    try {
      d = fromBinary(SenderKeyDistributionSchema, bytes);
    } catch {
      return fail("malformed_message");
    }
    if (d.distributionId.length !== 16 || d.chainKey.length !== 32 || d.signingKey.length !== 32)
      fail("invalid_argument");
    return new GroupReceiver(d.distributionId, d.chainId, d.iteration, d.chainKey, d.signingKey, limits);
  }

  decrypt(bytes: Uint8Array): Uint8Array {
    let m;
    try {
      m = fromBinary(SenderKeyMessageSchema, bytes);
    } catch {
      return fail("malformed_message");
    }
    if (m.distributionId.length !== 16 || m.ciphertext.length < 16) fail("malformed_message");
    if (!equal(m.distributionId, this.distribution) || m.chainId !== this.chainId) fail("unknown_sender_chain");
    const it = m.iteration;
    if (!verify(this.signingPublic, signedBytes(m.distributionId, this.chainId, it, m.ciphertext), m.signature))
      fail("bad_signature");
    const openWith = (mk: Uint8Array) => {
      const p = messageAead(mk, labels.senderKeyMessageKeys);
      return unpad(aeadOpen(p.key, p.nonce, messageAd(this.distribution, this.chainId, it, this.signingPublic), m.ciphertext));
    };
    const stored = this.skipped.get(it);
    if (stored) {
      const plain = openWith(stored);
      this.skipped.delete(it);
      return plain;
    }
    if (it < this.iteration) fail("duplicate_message");
    if (it - this.iteration > this.limits.maxSkip) fail("too_many_skipped");
    const fresh: [number, Uint8Array][] = [];
    let ck = this.chainKey;
    for (let at = this.iteration; at < it; at++) {
      const s = kdfCk(ck);
      fresh.push([at, s.messageKey]);
      ck = s.nextChain;
    }
    const step = kdfCk(ck);
    const plain = openWith(step.messageKey);
    this.chainKey = step.nextChain;
    this.iteration = it + 1;
    for (const [i, k] of fresh) this.skipped.set(i, k);
    const order = [...this.skipped.keys()].sort((a, b) => a - b);
    while (this.skipped.size > this.limits.maxStored) this.skipped.delete(order.shift()!);
    return plain;
  }
}
