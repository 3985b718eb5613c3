// One WebSocket to havend (/v1/ws): binary frames, one protobuf message
// each; every request gets exactly one reply with its request id.
import { create, fromBinary, MessageInitShape, toBinary } from "@bufbuild/protobuf";
import {
  AuthChallenge,
  ClientFrameSchema,
  Envelope,
  ErrorCode,
  ServerFrame,
  ServerFrameSchema,
} from "../gen/wire_pb";

export class RelayError extends Error {
  constructor(
    readonly code: ErrorCode | "closed" | "timeout" | "protocol",
    message: string,
  ) {
    super(message);
    this.name = "RelayError";
  }
}

type Body = MessageInitShape<typeof ClientFrameSchema>["body"];

export class Relay {
  private nextId = 1n;
  private pending = new Map<bigint, { resolve: (f: ServerFrame) => void; reject: (e: Error) => void }>();
  /** Pushed envelopes, oldest first: one frame's worth at a time. */
  onEnvelopes: (batch: Envelope[]) => void = () => {};
  onDrained: () => void = () => {};
  onClose: () => void = () => {};
  private closed = false;

  private constructor(
    private ws: WebSocket,
    readonly challenge: AuthChallenge,
  ) {
    ws.onmessage = (ev) => this.receive(new Uint8Array(ev.data as ArrayBuffer));
    ws.onclose = () => this.shutdown();
    ws.onerror = () => this.shutdown();
  }

  /** Opens the socket and waits for the server's AuthChallenge. */
  static connect(url: string, timeoutMs = 10_000): Promise<Relay> {
    return new Promise((resolve, reject) => {
      let ws: WebSocket;
      try {
        ws = new WebSocket(url);
      } catch (e) {
        reject(new RelayError("closed", String(e)));
        return;
      }
      ws.binaryType = "arraybuffer";
      const timer = setTimeout(() => {
        ws.close();
        reject(new RelayError("timeout", "no challenge"));
      }, timeoutMs);
      ws.onmessage = (ev) => {
        clearTimeout(timer);
        try {
          const f = fromBinary(ServerFrameSchema, new Uint8Array(ev.data as ArrayBuffer));
          if (f.body.case !== "challenge") throw new Error("expected a challenge");
          resolve(new Relay(ws, f.body.value));
        } catch (e) {
          ws.close();
          reject(new RelayError("protocol", String(e)));
        }
      };
      ws.onerror = ws.onclose = () => {
        clearTimeout(timer);
        reject(new RelayError("closed", "cannot reach the server"));
      };
    });
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /** Sends a request and resolves with the reply frame; an Error reply rejects. */
  request(body: Body, timeoutMs = 20_000): Promise<ServerFrame> {
    if (this.closed) return Promise.reject(new RelayError("closed", "connection closed"));
    const id = this.nextId++;
    const frame = create(ClientFrameSchema, { requestId: id, body });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new RelayError("timeout", "no reply"));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (f) => {
          clearTimeout(timer);
          resolve(f);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.ws.send(toBinary(ClientFrameSchema, frame));
    });
  }

  close(): void {
    try {
      this.ws.close();
    } catch {
      /* already closed */
    }
    this.shutdown();
  }

  private receive(bytes: Uint8Array) {
    let f: ServerFrame;
    try {
      f = fromBinary(ServerFrameSchema, bytes);
    } catch {
      return;
    }
    if (f.body.case === "batch") {
      for (const inner of f.body.value.frames) if (inner.body.case !== "batch") this.handle(inner);
      return;
    }
    this.handle(f);
  }

  private handle(f: ServerFrame) {
    if (f.requestId === 0n) {
      if (f.body.case === "envelopes") this.onEnvelopes(f.body.value.envelopes);
      else if (f.body.case === "queueDrained") this.onDrained();
      return;
    }
    const p = this.pending.get(f.requestId);
    if (!p) return;
    this.pending.delete(f.requestId);
    if (f.body.case === "error") p.reject(new RelayError(f.body.value.code, f.body.value.message));
    else p.resolve(f);
  }

  private shutdown() {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.pending.values()) p.reject(new RelayError("closed", "connection closed"));
    this.pending.clear();
    this.onClose();
  }
}

export function defaultServerUrl(): string {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/v1/ws`;
}
