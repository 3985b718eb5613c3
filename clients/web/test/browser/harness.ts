// Starts what a browser test needs: havend (fresh data dir, invites made
// before start, serving dist/), a tiny local "exit site", the haven CLI and
// Debian's chromium through playwright-core.
import { ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, Server } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { AddressInfo } from "node:net";
import { Browser, chromium } from "playwright-core";

export const havendBin = process.env.HAVEND ?? resolve(__dirname, "../../../../build/server/havend");
export const havenBin = process.env.HAVEN ?? resolve(__dirname, "../../../../build/clients/cli/haven");
export const webRoot = process.env.WEB_DIST ?? resolve(__dirname, "../../dist");
export const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
export const passphrase = "a long shared test passphrase";

export class Havend {
  readonly dir = mkdtempSync(join(tmpdir(), "haven-web-"));
  readonly data = join(this.dir, "data");
  private proc?: ChildProcess;
  port = 0;

  admin(...args: string[]): string {
    return execFileSync(havendBin, ["--data-dir", this.data, "admin", ...args], { encoding: "utf8" });
  }

  invites(roles: string[]): string[] {
    this.admin("create-org", "Test Service");
    return roles.map((r) => this.admin("invite", "Test Service", "--role", r).split("\n")[0].trim());
  }

  start(): Promise<number> {
    return new Promise((ok, fail) => {
      const p = spawn(havendBin, ["--port", "0", "--data-dir", this.data, "--web-root", webRoot], {
        stdio: ["ignore", "pipe", "ignore"],
      });
      this.proc = p;
      let line = "";
      p.stdout!.on("data", (d: Buffer) => {
        line += d.toString();
        const m = /havend listening on [\d.]+:(\d+)/.exec(line);
        if (m && !this.port) {
          this.port = Number(m[1]);
          ok(this.port);
        }
      });
      p.on("exit", (code) => fail(new Error(`havend exited ${code}`)));
    });
  }

  get origin(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  stop() {
    this.proc?.kill("SIGKILL");
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** One CLI user with its own profile directory. */
export class Cli {
  readonly profile: string;
  constructor(
    private server: Havend,
    readonly name: string,
  ) {
    this.profile = join(server.dir, "cli-" + name);
  }
  run(...args: string[]): string {
    return execFileSync(havenBin, ["--profile", this.profile, ...args], {
      encoding: "utf8",
      env: { ...process.env, HAVEN_PASSPHRASE: passphrase },
      timeout: 60_000,
    });
  }
  init(invite: string) {
    this.run("init", "--server", `ws://127.0.0.1:${this.server.port}`, "--invite", invite, "--name", this.name);
  }
  code(): string {
    return this.run("code").trim();
  }
  inbox(): string[] {
    return this.run("inbox")
      .split("\n")
      .filter((l) => l.trim().length > 0);
  }
}

/** Serves an ordinary-looking page for every path: where quick exit goes. */
export function exitSite(): Promise<{ url: string; server: Server }> {
  return new Promise((ok) => {
    const server = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end("<!doctype html><title>Weather forecast</title><h1>Weather forecast</h1><p>Sunny spells, 18°C.</p>");
    });
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as AddressInfo).port;
      ok({ url: `http://127.0.0.1:${port}/weather`, server });
    });
  });
}

export function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}
