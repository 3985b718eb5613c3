// The survivor's client: the C++ client's flows (clients/core/src/client.cpp)
// over one live connection, with the profile kept only in memory and sealed
// into the roaming vault on the server after every change.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { ascii, concat, equal } from "../crypto/bytes";
import {
  generateIdentity,
  generateSignedPrekey,
  IdentityKeyPair,
  identityFromSecrets,
  identityFromWire,
  identityToWire,
  signedPrekeyToWire,
  verifyBundle,
  x25519FromSecret,
  x25519Generate,
} from "../crypto/identity";
import { labels } from "../crypto/labels";
import { sign, signingFromSeed } from "../crypto/primitives";
import { systemRandom } from "../crypto/random";
import { issueCertificate, openSealed, seal } from "../crypto/sealed";
import { fingerprintDigits } from "../crypto/safety_number";
import { parsePrekeyMessage, Session } from "../crypto/session";
import {
  deriveVaultKeys,
  encodeVaultHeader,
  newVaultHeader,
  openVault,
  readVaultHeader,
  sealVault,
  vaultAuthVerifier,
  VaultKeys,
} from "../crypto/vault";
import { ContentType } from "../gen/e2e_pb";
import {
  ChatMessageSchema,
  Contact,
  ContactSchema,
  HistoryEntry,
  HistoryEntrySchema,
  KeyPairSecretSchema,
  Profile,
  ProfileSchema,
} from "../gen/client_pb";
import { Envelope, OneTimePrekeySchema, PrekeyKind } from "../gen/wire_pb";
import { decodeAccountCode, decodeContactCode, encodeAccountCode, encodeContactCode } from "./codes";
import { Relay, RelayError } from "./relay";

const signedPrekeyId = 1;
const lastResortId = 2;
const firstOneTimeId = 100;
const oneTimeBatch = 100;
const oneTimeLow = 20;
const oneTimeKept = 1000;
const seenKept = 5000;

export const unixNow = () => Math.floor(Date.now() / 1000);
const random = systemRandom;

export class ClientError extends Error {
  constructor(readonly code: string) {
    super(code);
    this.name = "ClientError";
  }
}

export interface Incoming {
  contact: string;
  entry: HistoryEntry;
}

/** A message sealed in advance, and what it takes to log in and send it. */
export interface AlertBundle {
  server: string;
  mailboxId: Uint8Array;
  deviceId: number;
  deviceSeed: Uint8Array;
  to: Uint8Array;
  toDevice: number;
  accessKey: Uint8Array;
  sealed: Uint8Array;
}

/** Logs in with the bundle's device key and sends its alert; best effort. */
export async function sendAlert(b: AlertBundle): Promise<void> {
  const relay = await Relay.connect(b.server);
  try {
    const device = signingFromSeed(b.deviceSeed);
    const ch = relay.challenge;
    await relay.request({
      case: "auth",
      value: { mailboxId: b.mailboxId, deviceId: b.deviceId, signature: sign(device, concat(ascii(labels.auth), ch.serverId, ch.nonce)) },
    });
    device.privateKey.fill(0);
    await relay.request({
      case: "send",
      value: { envelopeId: random(16), mailboxId: b.to, accessKey: b.accessKey, messages: [{ deviceId: b.toDevice, sealed: b.sealed }] },
    });
  } finally {
    relay.close();
  }
}

/** What the unlock screen needs to open the vault again without the server. */
export interface LocalCopy {
  vaultId: Uint8Array;
  sealed: Uint8Array;
}

export class HavenClient {
  onMessage: (m: Incoming) => void = () => {};
  onSaved: (c: LocalCopy) => void = () => {};
  onConnection: (online: boolean) => void = () => {};
  private relay: Relay | undefined;
  private identity: IdentityKeyPair;
  private chain: Promise<unknown> = Promise.resolve();
  private wiped = false;

  private constructor(
    private profile: Profile,
    private vaultId: Uint8Array,
    private vaultKeys: VaultKeys,
  ) {
    this.identity = identityFromSecrets(profile.identitySigningSeed, profile.identityDhSecret);
  }

  get accountCode(): string {
    return encodeAccountCode(this.vaultId);
  }

  get name(): string {
    return this.profile.name;
  }

  get online(): boolean {
    return !!this.relay?.isOpen;
  }

  // ------------------------------------------------------------ register / log in

  /** Creates keys and a mailbox with an invite, stores the vault, stays logged in. */
  static async register(server: string, invite: string, name: string, passphrase: string): Promise<HavenClient> {
    const id = generateIdentity(random);
    const device = signingFromSeed(random(32));
    const spk = generateSignedPrekey(id, signedPrekeyId, PrekeyKind.SIGNED, random);
    const last = generateSignedPrekey(id, lastResortId, PrekeyKind.LAST_RESORT, random);
    const p = create(ProfileSchema, {
      serverUrl: server,
      name,
      identitySigningSeed: id.signing.seed,
      identityDhSecret: id.dhSecret,
      deviceSigningSeed: device.seed,
      accessKey: random(32),
      signedPrekey: create(KeyPairSecretSchema, { id: spk.id, secret: spk.key.secret, signature: spk.signature }),
      lastResort: create(KeyPairSecretSchema, { id: last.id, secret: last.key.secret, signature: last.signature }),
    });
    const relay = await Relay.connect(server);
    try {
      const ch = relay.challenge;
      const reply = await relay.request({
        case: "register",
        value: {
          inviteToken: invite,
          identity: identityToWire(id.pub),
          deviceSigningKey: device.publicKey,
          accessKey: p.accessKey,
          signature: sign(device, concat(ascii(labels.register), ch.serverId, ch.nonce, new TextEncoder().encode(invite))),
        },
      });
      if (reply.body.case !== "registered") throw new ClientError("protocol");
      p.mailboxId = reply.body.value.mailboxId;
      p.deviceId = reply.body.value.deviceId;
      p.organisation = reply.body.value.organisation;
      p.role = reply.body.value.role;
      const header = newVaultHeader(random);
      const keys = deriveVaultKeys(new TextEncoder().encode(passphrase), header);
      const c = new HavenClient(p, random(16), keys);
      c.attach(relay);
      await c.save();
      await relay.request({
        case: "uploadPrekeys",
        value: { signedPrekey: signedPrekeyToWire(spk), lastResort: signedPrekeyToWire(last) },
      });
      await c.replenish();
      return c;
    } catch (e) {
      relay.close();
      throw e;
    }
  }

  /** Opens the roaming vault with account code + passphrase, then logs in. */
  static async login(server: string, accountCode: string, passphrase: string): Promise<HavenClient> {
    const vaultId = decodeAccountCode(accountCode);
    if (!vaultId) throw new ClientError("bad_account_code");
    const relay = await Relay.connect(server);
    try {
      const h = await relay.request({ case: "vaultHeader", value: { vaultId } });
      if (h.body.case !== "vaultHeader") throw new ClientError("protocol");
      const keys = deriveVaultKeys(new TextEncoder().encode(passphrase), readVaultHeader(h.body.value.header));
      let opened;
      try {
        opened = await relay.request({ case: "vaultOpen", value: { vaultId, authKey: keys.authKey } });
      } catch (e) {
        if (e instanceof RelayError && e.code === 5) throw new ClientError("wrong_passphrase");
        throw e;
      }
      if (opened.body.case !== "vaultOpened") throw new ClientError("protocol");
      const profile = fromBinary(ProfileSchema, openVault(keys, opened.body.value.sealed));
      const c = new HavenClient(profile, vaultId, keys);
      await c.auth(relay);
      return c;
    } catch (e) {
      relay.close();
      throw e;
    }
  }

  /** Opens a vault kept on this device (own-device mode), then logs in. */
  static async openLocal(server: string, local: LocalCopy, passphrase: string): Promise<HavenClient> {
    const header = readVaultHeader(local.sealed);
    const keys = deriveVaultKeys(new TextEncoder().encode(passphrase), header);
    const profile = fromBinary(ProfileSchema, openVault(keys, local.sealed));
    const c = new HavenClient(profile, local.vaultId, keys);
    const relay = await Relay.connect(server);
    try {
      await c.auth(relay);
    } catch (e) {
      relay.close();
      throw e;
    }
    return c;
  }

  private async auth(relay: Relay) {
    const p = this.profile;
    const device = signingFromSeed(p.deviceSigningSeed);
    const ch = relay.challenge;
    // Envelopes may be pushed as soon as we are logged in.
    this.attach(relay);
    const reply = await relay.request({
      case: "auth",
      value: {
        mailboxId: p.mailboxId,
        deviceId: p.deviceId,
        signature: sign(device, concat(ascii(labels.auth), ch.serverId, ch.nonce)),
      },
    });
    device.privateKey.fill(0);
    if (reply.body.case !== "authenticated") throw new ClientError("protocol");
    await this.replenish();
  }

  private attach(relay: Relay) {
    this.relay = relay;
    relay.onEnvelopes = (batch) => void this.serial(() => this.take(batch));
    relay.onClose = () => this.onConnection(false);
    this.onConnection(true);
  }

  /** Reconnects and logs in again after the connection dropped. */
  async reconnect(): Promise<void> {
    if (this.wiped || this.online) return;
    const relay = await Relay.connect(this.profile.serverUrl);
    await this.auth(relay);
  }

  // Serialises work on the profile: envelopes and sends never interleave.
  private serial<T>(f: () => Promise<T>): Promise<T> {
    const next = this.chain.then(f, f);
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async replenish() {
    const relay = this.mustRelay();
    const held = await relay.request({ case: "uploadPrekeys", value: {} });
    if (held.body.case !== "prekeysUploaded") throw new ClientError("protocol");
    if (held.body.value.oneTimeStored >= oneTimeLow) return;
    const p = this.profile;
    const first = Math.max(p.nextPrekeyId, firstOneTimeId);
    const pubs = [];
    for (let i = 0; i < oneTimeBatch; i++) {
      const k = x25519Generate(random);
      p.oneTime.push(create(KeyPairSecretSchema, { id: first + i, secret: k.secret }));
      pubs.push(create(OneTimePrekeySchema, { id: first + i, publicKey: k.publicKey }));
    }
    p.nextPrekeyId = first + oneTimeBatch;
    if (p.oneTime.length > oneTimeKept) p.oneTime.splice(0, p.oneTime.length - oneTimeKept);
    // Secrets are saved before their public halves leave.
    await this.save();
    await relay.request({ case: "uploadPrekeys", value: { oneTime: pubs } });
  }

  private mustRelay(): Relay {
    if (!this.relay || !this.relay.isOpen) throw new ClientError("offline");
    return this.relay;
  }

  /** Seals the profile and stores it on the server (and locally when asked). */
  private async save() {
    const contents = toBinary(ProfileSchema, this.profile);
    const sealed = sealVault(this.vaultKeys, contents, random);
    contents.fill(0);
    await this.mustRelay().request({
      case: "vaultStore",
      value: {
        vaultId: this.vaultId,
        header: encodeVaultHeader(this.vaultKeys.header),
        authVerifier: vaultAuthVerifier(this.vaultKeys),
        sealed,
      },
    });
    this.onSaved({ vaultId: this.vaultId, sealed });
  }

  /** The current sealed vault, for own-device mode. */
  localCopy(): LocalCopy {
    const contents = toBinary(ProfileSchema, this.profile);
    const sealed = sealVault(this.vaultKeys, contents, random);
    contents.fill(0);
    return { vaultId: this.vaultId, sealed };
  }

  // ------------------------------------------------------------ contacts

  contactCode(): string {
    const p = this.profile;
    return encodeContactCode({ mailboxId: p.mailboxId, identity: this.identity.pub, accessKey: p.accessKey });
  }

  contacts(): Contact[] {
    return this.profile.contacts;
  }

  addContact(name: string, code: string): Promise<void> {
    return this.serial(async () => {
      let decoded;
      try {
        decoded = decodeContactCode(code);
      } catch {
        throw new ClientError("bad_contact_code");
      }
      const p = this.profile;
      if (equal(decoded.mailboxId, p.mailboxId)) throw new ClientError("bad_contact_code");
      let existing = p.contacts.find((c) => c.name === name);
      for (const c of p.contacts)
        if (equal(c.identitySigningKey, decoded.identity.signingKey)) {
          if (existing && existing !== c) throw new ClientError("contact_exists");
          existing = c;
        }
      if (existing && existing.identitySigningKey.length && !equal(existing.identitySigningKey, decoded.identity.signingKey))
        throw new ClientError("contact_exists");
      const c = existing ?? create(ContactSchema, {});
      if (!existing) p.contacts.push(c);
      c.name = name;
      c.mailboxId = decoded.mailboxId;
      c.identitySigningKey = decoded.identity.signingKey;
      c.identity = identityToWire(decoded.identity);
      c.accessKey = decoded.accessKey;
      await this.save();
    });
  }

  // ------------------------------------------------------------ send

  send(name: string, text: string): Promise<HistoryEntry> {
    return this.serial(async () => {
      const out = await this.prepare(name, text);
      const entry = create(HistoryEntrySchema, { outgoing: true, text, sentAt: out.sentAt });
      out.contact.history.push(entry);
      await this.save();
      try {
        await this.mustRelay().request({
          case: "send",
          value: {
            envelopeId: random(16),
            mailboxId: out.contact.mailboxId,
            accessKey: out.contact.accessKey,
            messages: [{ deviceId: out.contact.deviceId, sealed: out.sealed }],
          },
        });
      } catch (e) {
        out.contact.history.splice(out.contact.history.indexOf(entry), 1);
        await this.save().catch(() => undefined);
        throw e;
      }
      return entry;
    });
  }

  /**
   * Seals a message now for sending later (the duress alert): the ratchet
   * advances and is saved, so the receiver sees a gap until it arrives.
   */
  prepareAlert(name: string, text: string): Promise<AlertBundle> {
    return this.serial(async () => {
      const out = await this.prepare(name, text);
      await this.save();
      const p = this.profile;
      return {
        server: p.serverUrl,
        mailboxId: p.mailboxId,
        deviceId: p.deviceId,
        deviceSeed: p.deviceSigningSeed.slice(),
        to: out.contact.mailboxId.slice(),
        toDevice: out.contact.deviceId,
        accessKey: out.contact.accessKey.slice(),
        sealed: out.sealed,
      };
    });
  }

  private async prepare(name: string, text: string) {
    const p = this.profile;
    const contact = p.contacts.find((c) => c.name === name);
    if (!contact) throw new ClientError("unknown_contact");
    if (!contact.accessKey.length) throw new ClientError("no_access_key");
    let s: Session;
    if (contact.session.length) {
      s = Session.deserialize(contact.session);
    } else {
      const reply = await this.mustRelay().request({
        case: "fetchPrekeys",
        value: { mailboxId: contact.mailboxId, accessKey: contact.accessKey },
      });
      if (reply.body.case !== "prekeyBundle") throw new ClientError("protocol");
      const bundle = reply.body.value;
      const expected = contact.identity;
      // The server must hand out the very identity the contact code named.
      if (
        !bundle.identity ||
        !expected ||
        !equal(bundle.identity.signingKey, expected.signingKey) ||
        !equal(bundle.identity.dhKey, expected.dhKey) ||
        !equal(bundle.identity.dhKeySignature, expected.dhKeySignature) ||
        bundle.devices.length === 0
      )
        throw new ClientError("identity_changed");
      let verified;
      try {
        verified = verifyBundle(bundle.identity, bundle.devices[0]);
      } catch {
        throw new ClientError("identity_changed");
      }
      s = Session.initiate(this.identity, verified, random);
      contact.deviceId = bundle.devices[0].deviceId;
    }
    const recipient = identityFromWire(contact.identity);
    const chat = create(ChatMessageSchema, { text, sentAt: BigInt(unixNow()) });
    const enc = s.encrypt(toBinary(ChatMessageSchema, chat));
    const cert = issueCertificate(this.identity, p.mailboxId, p.deviceId);
    const sealed = seal(
      this.identity,
      cert,
      recipient,
      enc.type === "prekey" ? ContentType.PREKEY_MESSAGE : ContentType.RATCHET_MESSAGE,
      enc.bytes,
      random,
    );
    contact.session = s.serialize();
    s.wipe();
    return { contact, sealed, sentAt: chat.sentAt };
  }

  // ------------------------------------------------------------ receive

  private seen(id: Uint8Array) {
    return this.profile.seenEnvelopes.some((s) => equal(s, id));
  }

  // Saves what a frame of envelopes brought, then acks them all in one
  // request: after a crash the server still has whatever was not saved.
  private async take(batch: Envelope[]) {
    const messages = batch.map((e) => this.receive(e));
    await this.save();
    const envelopes = batch.map((e) => ({ seq: e.seq, envelopeId: e.envelopeId }));
    await this.relay?.request({ case: "ack", value: { envelopes } }).catch(() => undefined);
    for (const m of messages) if (m) this.onMessage(m);
  }

  private receive(e: Envelope): Incoming | undefined {
    const p = this.profile;
    if (this.seen(e.envelopeId)) return undefined;
    p.seenEnvelopes.push(e.envelopeId);
    if (p.seenEnvelopes.length > seenKept) p.seenEnvelopes.splice(0, 1);
    let opened;
    try {
      opened = openSealed(this.identity, e.sealed);
    } catch {
      return undefined;
    }
    const sender = opened.sender;
    let contact = p.contacts.find((c) => equal(c.identitySigningKey, sender.identity.signingKey));
    if (!contact) {
      contact = create(ContactSchema, {
        name: "unknown-" + fingerprintDigits(sender.identity).slice(0, 5),
        identitySigningKey: sender.identity.signingKey,
      });
      p.contacts.push(contact);
    }
    contact.identity = identityToWire(sender.identity);
    contact.mailboxId = sender.mailbox;
    contact.deviceId = sender.deviceId;
    let plain: Uint8Array;
    try {
      plain = this.decrypt(contact, opened.type, opened.message);
    } catch {
      return undefined;
    }
    let chat;
    try {
      chat = fromBinary(ChatMessageSchema, plain);
    } catch {
      return undefined;
    }
    const entry = create(HistoryEntrySchema, {
      outgoing: false,
      text: chat.text,
      sentAt: chat.sentAt,
      receivedAt: BigInt(unixNow()),
    });
    contact.history.push(entry);
    return { contact: contact.name, entry };
  }

  private decrypt(contact: Contact, type: ContentType, message: Uint8Array): Uint8Array {
    const p = this.profile;
    if (type === ContentType.PREKEY_MESSAGE) {
      const header = parsePrekeyMessage(message);
      if (contact.session.length) {
        const current = Session.deserialize(contact.session);
        if (equal(current.baseKey, header.baseKey)) {
          const plain = current.decrypt({ type: "prekey", bytes: message }, random);
          contact.session = current.serialize();
          return plain;
        }
      }
      if (!p.signedPrekey || header.signedPrekeyId !== p.signedPrekey.id) throw new ClientError("decrypt_failed");
      const spk = {
        id: p.signedPrekey.id,
        kind: PrekeyKind.SIGNED,
        key: x25519FromSecret(p.signedPrekey.secret),
        signature: p.signedPrekey.signature,
      };
      let extra;
      let used = -1;
      if (header.oneTimeKind === PrekeyKind.ONE_TIME) {
        used = p.oneTime.findIndex((k) => k.id === header.oneTimeId);
        if (used < 0) throw new ClientError("decrypt_failed");
        extra = x25519FromSecret(p.oneTime[used].secret);
      } else if (header.oneTimeKind === PrekeyKind.LAST_RESORT && p.lastResort) {
        extra = x25519FromSecret(p.lastResort.secret);
      }
      const s = Session.respond(this.identity, spk, extra, header);
      const plain = s.decrypt({ type: "prekey", bytes: message }, random);
      if (used >= 0) {
        p.oneTime[used].secret.fill(0);
        p.oneTime.splice(used, 1);
      }
      contact.session = s.serialize();
      return plain;
    }
    if (type !== ContentType.RATCHET_MESSAGE || !contact.session.length) throw new ClientError("decrypt_failed");
    const s = Session.deserialize(contact.session);
    const plain = s.decrypt({ type: "ratchet", bytes: message }, random);
    contact.session = s.serialize();
    return plain;
  }

  // ------------------------------------------------------------ wipe

  /** Quick exit and lock: closes the socket and overwrites every secret held. */
  wipe(): void {
    if (this.wiped) return;
    this.wiped = true;
    this.relay?.close();
    this.relay = undefined;
    const p = this.profile;
    const z = (b?: Uint8Array) => b?.fill(0);
    z(p.identitySigningSeed);
    z(p.identityDhSecret);
    z(p.deviceSigningSeed);
    z(p.accessKey);
    z(p.signedPrekey?.secret);
    z(p.lastResort?.secret);
    for (const k of p.oneTime) z(k.secret);
    for (const c of p.contacts) {
      z(c.session);
      z(c.accessKey);
      for (const h of c.history) h.text = "";
      c.history.length = 0;
    }
    p.contacts.length = 0;
    z(this.identity.signing.privateKey);
    z(this.identity.signing.seed);
    z(this.identity.dhSecret);
    z(this.vaultKeys.authKey);
    z(this.vaultKeys.encKey);
  }
}
