// The disguised client in Debian's chromium against a real havend and the
// haven CLI: the cover, unlock + conversation with a CLI user, each quick
// exit trigger, the duress PIN, and reload after exit.
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Browser, BrowserContext, Page } from "playwright-core";
import { Cli, exitSite, Havend, launch } from "./harness";

const shots = process.env.SCREENSHOT_DIR ?? resolve(__dirname, "../../../../docs/screenshots");
const survivorPass = "correct horse battery staple";
const revealing = /haven|abuse|domestic|violence|survivor|refuge|caseworker|idva|helpline|999|exit now|passphrase/i;

let havend: Havend;
let browser: Browser;
let exit: { url: string; server: Server };
let worker: Cli;
let invites: string[];
let accountCode = "";

beforeAll(async () => {
  mkdirSync(shots, { recursive: true });
  havend = new Havend();
  invites = havend.invites(["caseworker", "survivor", "survivor", "survivor"]);
  await havend.start();
  exit = await exitSite();
  worker = new Cli(havend, "worker");
  worker.init(invites[0]);
  browser = await launch();
});

afterAll(async () => {
  await browser?.close();
  exit?.server.close();
  havend?.stop();
});

/** A fresh context whose config.json sends quick exit to the local exit site. */
async function freshPage(): Promise<{ ctx: BrowserContext; page: Page; requests: string[] }> {
  const ctx = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  const page = await ctx.newPage();
  const requests: string[] = [];
  page.on("request", (r) => requests.push(r.url()));
  await page.route("**/config.json", async (route) => {
    const res = await route.fetch();
    const json = await res.json();
    json.exitUrl = exit.url;
    await route.fulfill({ response: res, json });
  });
  return { ctx, page, requests };
}

async function gesture(page: Page) {
  const logo = page.locator("button.logo");
  for (let i = 0; i < 5; i++) await logo.click();
}

async function login(page: Page) {
  await page.goto(havend.origin + "/");
  await gesture(page);
  await page.getByLabel("Account code").fill(accountCode);
  await page.getByLabel("Passphrase", { exact: true }).fill(survivorPass);
  await page.getByRole("button", { name: "Open", exact: true }).click();
  await page.getByRole("heading", { name: "Contacts" }).waitFor();
}

async function waitFor<T>(f: () => T | undefined, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 300));
  }
}

async function storageLeft(page: Page) {
  const inPage = await page.evaluate(async () => ({
    local: localStorage.length,
    session: sessionStorage.length,
    cookies: document.cookie,
    idb: (await indexedDB.databases()).length,
    caches: (await caches.keys()).length,
    workers: (await navigator.serviceWorker.getRegistrations()).length,
  }));
  return { ...inPage, contextCookies: (await page.context().cookies()).length };
}

const nothingStored = { local: 0, session: 0, cookies: "", idb: 0, caches: 0, workers: 0, contextCookies: 0 };

describe("browser client", () => {
  it("the cover shows nothing about Haven or abuse (title, text, icon) and asks no other origin", async () => {
    const { ctx, page, requests } = await freshPage();
    await page.goto(havend.origin + "/");
    await page.locator("h1").waitFor();
    const title = await page.title();
    const text = await page.locator("body").innerText();
    const icon = await page.locator("link[rel=icon]").getAttribute("href");
    expect(title).toMatch(/lemon/i);
    expect(title).not.toMatch(revealing);
    expect(text).not.toMatch(revealing);
    expect(icon).not.toMatch(revealing);
    const iconBody = await (await page.request.get(new URL(icon!, page.url()).href)).text();
    expect(iconBody).not.toMatch(revealing);
    expect(text).toMatch(/Ingredients/);
    await page.screenshot({ path: join(shots, "cover.png"), fullPage: false });
    for (const r of requests) expect(new URL(r).origin).toBe(havend.origin);
    await ctx.close();
  });

  it("registers through the hidden gesture and talks with a CLI user both ways", async () => {
    const { ctx, page, requests } = await freshPage();
    await page.goto(havend.origin + "/");
    await gesture(page);
    await page.getByRole("button", { name: "I have an invite" }).click();
    await page.getByLabel("Invite code").fill(invites[1]);
    await page.getByLabel("Name your worker will see").fill("sam");
    await page.getByLabel(/Choose a passphrase/).fill(survivorPass);
    await page.getByRole("button", { name: "Create" }).click();
    accountCode = (await page.locator("#account-code-display").innerText({ timeout: 30_000 })).trim();
    expect(accountCode).toMatch(/^[0-9A-Z]{4}(-[0-9A-Z]{1,4}){6}$/);
    await page.getByRole("button", { name: "Continue" }).click();

    // Add the worker by the CLI's contact code, then write first.
    await page.getByText("Add a contact").click();
    await page.getByLabel("Contact name").fill("worker");
    await page.getByLabel("Their contact code").fill(worker.code());
    await page.getByRole("button", { name: "Add", exact: true }).click();
    await page.getByRole("button", { name: "worker" }).waitFor();
    await page.getByRole("textbox", { name: "Message" }).fill("hello from the browser");
    await page.getByRole("button", { name: "Send" }).click();
    await page.locator(".messages li.out", { hasText: "hello from the browser" }).waitFor();

    const got = await waitFor(() => {
      const lines = worker.inbox();
      return lines.length ? lines : undefined;
    });
    expect(got.join("\n")).toContain("hello from the browser");
    // The CLI named the stranger "unknown-…"; it adds her code as "sam" and replies.
    await page.getByText("My contact code").first().click();
    const code = (await page.locator("#my-code").inputValue()).trim();
    worker.run("contact", "add", "sam", code);
    worker.run("send", "sam", "hi sam, this is your worker");
    await page.locator(".messages li.in", { hasText: "hi sam, this is your worker" }).waitFor({ timeout: 20_000 });
    await page.getByRole("textbox", { name: "Message" }).fill("thank you, talk tomorrow");
    await page.getByRole("button", { name: "Send" }).click();
    await page.locator(".messages li.out", { hasText: "thank you, talk tomorrow" }).waitFor();
    const second = await waitFor(() => {
      const lines = worker.inbox();
      return lines.length ? lines : undefined;
    });
    expect(second.join("\n")).toContain("thank you, talk tomorrow");
    await page.screenshot({ path: join(shots, "chat.png") });

    // Nothing of ours hangs off window; nothing was stored; one origin only.
    const extra = await page.evaluate(() => {
      const f = document.createElement("iframe");
      document.body.append(f);
      const base = new Set(Object.getOwnPropertyNames(f.contentWindow!));
      f.remove();
      return Object.getOwnPropertyNames(window).filter((k) => !base.has(k));
    });
    expect(extra).toEqual([]);
    expect(await storageLeft(page)).toEqual(nothingStored);
    for (const r of requests) expect(new URL(r).origin).toBe(havend.origin);
    await ctx.close();
  });

  it("logs in on a fresh browser with the account code and passphrase and sees the history", async () => {
    const { ctx, page } = await freshPage();
    await login(page);
    await page.locator(".messages li.in", { hasText: "hi sam, this is your worker" }).waitFor();
    await ctx.close();
  });

  const triggers: [string, (page: Page) => Promise<number>][] = [
    ["the exit button", (page) => page.evaluate(() => new Promise<number>((ok) => {
      (document.querySelector("button.exit") as HTMLButtonElement).click();
      requestAnimationFrame(() => ok(document.body.innerText.length + document.body.childElementCount));
    }))],
    ["Shift pressed three times", (page) => page.evaluate(() => new Promise<number>((ok) => {
      for (let i = 0; i < 3; i++) window.dispatchEvent(new KeyboardEvent("keydown", { key: "Shift", shiftKey: true }));
      requestAnimationFrame(() => ok(document.body.innerText.length + document.body.childElementCount));
    }))],
    ["Esc pressed twice", (page) => page.evaluate(() => new Promise<number>((ok) => {
      for (let i = 0; i < 2; i++) window.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape" }));
      requestAnimationFrame(() => ok(document.body.innerText.length + document.body.childElementCount));
    }))],
  ];

  for (const [name, trigger] of triggers) {
    it(`quick exit by ${name}: blank within a frame, exit site, Back skips the chat, nothing stored, reload shows the cover`, async () => {
      const { ctx, page } = await freshPage();
      await page.goto(exit.url + "?before");
      await login(page);
      await page.locator(".messages li.in").first().waitFor();
      // Hold the exit site's answer so we can look at the page it leaves.
      await page.route(exit.url, async (route) => {
        await new Promise((r) => setTimeout(r, 1000));
        await route.continue();
      });
      expect(await trigger(page)).toBe(0);
      await page.waitForURL(exit.url);
      if (name === "the exit button") await page.screenshot({ path: join(shots, "exit.png") });
      expect(await page.title()).toBe("Weather forecast");
      await page.goBack();
      expect(page.url()).not.toContain(havend.origin);
      expect(await page.locator("body").innerText()).not.toMatch(/Contacts|worker|hi sam/);
      // The origin again (a plain file of it, then the page): nothing stored, the cover.
      await page.goto(havend.origin + "/config.json");
      expect(await storageLeft(page)).toEqual(nothingStored);
      await page.goto(havend.origin + "/");
      await page.locator("h1").waitFor();
      expect(await page.locator("h1").innerText()).toMatch(/Lemon/);
      expect(await page.locator("body").innerText()).not.toMatch(/Contacts|hi sam/);
      await ctx.close();
    });
  }

  it("the duress PIN shows a decoy, erases the device's copy and silently alerts the worker", async () => {
    const { ctx, page } = await freshPage();
    await login(page);
    await page.getByText("Settings").click();
    await page.getByLabel(/This is my own device/).check();
    await page.getByLabel(/Duress PIN/).fill("2580");
    await page.getByLabel(/Silently alert/).selectOption("worker");
    await page.getByRole("button", { name: "Save" }).click();
    await page.getByText("Saved").waitFor({ timeout: 30_000 });
    expect(await page.evaluate(() => localStorage.length)).toBe(1);
    await page.getByRole("button", { name: "Lock" }).click();
    await page.reload();
    await gesture(page);
    await page.getByLabel("Passphrase").fill("2580");
    await page.getByRole("button", { name: "Unlock" }).click();
    await page.getByRole("heading", { name: "Notes" }).waitFor({ timeout: 30_000 });
    expect(await page.locator("body").innerText()).not.toMatch(/worker|hi sam|Contacts/);
    await page.screenshot({ path: join(shots, "decoy.png") });
    expect(await storageLeft(page)).toEqual(nothingStored);
    const alert = await waitFor(() => {
      const lines = worker.inbox();
      return lines.some((l) => l.includes("duress")) ? lines : undefined;
    });
    expect(alert.join("\n")).toContain("my duress PIN was used");
    // No real state left: the gesture now asks for an account code, not a PIN.
    await page.reload();
    await gesture(page);
    await page.getByLabel("Account code").waitFor();
    await ctx.close();
  });

  it("the chat switches to Arabic, right to left, on a phone-sized screen", async () => {
    const { ctx, page } = await freshPage();
    await page.setViewportSize({ width: 390, height: 844 });
    await login(page);
    await page.selectOption("#lang-select", "ar");
    expect(await page.evaluate(() => document.documentElement.dir)).toBe("rtl");
    await page.getByRole("button", { name: "اخرج الآن" }).waitFor();
    await page.screenshot({ path: join(shots, "chat-ar-phone.png") });
    await ctx.close();
  });
});
