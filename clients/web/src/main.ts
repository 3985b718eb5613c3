// The disguised client: a cover page; a hidden gesture (tap the site's logo
// several times, or press Enter on it) opens the unlock screen. No history
// entries, no storage unless "this is my own device" is chosen.
import "./ui/style.css";
import { fromHex, hex } from "./crypto/bytes";
import { sodiumReady } from "./crypto/sodium";
import { systemRandom } from "./crypto/random";
import { deriveVaultKeys, newVaultHeader, openVault, readVaultHeader, sealVault } from "./crypto/vault";
import { AlertBundle, ClientError, HavenClient, Incoming, LocalCopy, sendAlert } from "./client/client";
import { defaultServerUrl } from "./client/relay";
import { h } from "./ui/dom";
import { configureExit, installExitKeys, quickExit } from "./ui/exit";
import { dir, Key, Lang, languages, lang, setLang, t } from "./ui/i18n";

interface Config {
  title: string;
  siteName: string;
  exitUrl: string;
  server: string;
  unlockTaps: number;
  defaultLanguage: Lang;
  emergency: { number: string; label: Record<string, string> }[];
  cover: {
    heading: string;
    byline: string;
    intro: string;
    ingredients: string[];
    method: string[];
    tip: string;
    footer: string;
  };
}

const storageKey = "kn-prefs"; // own-device mode only
let config: Config;
let client: HavenClient | undefined;
let selected: string | undefined;
const root = document.getElementById("app")!;

function wipeAll() {
  client?.wipe();
  client = undefined;
  selected = undefined;
}

// ------------------------------------------------------------ own-device storage

interface Local {
  v: string; // vault id
  s: string; // sealed vault
  d?: string; // duress: sealed alert bundle (or "{}") under the duress PIN
}

function readLocal(): Local | undefined {
  try {
    const raw = localStorage.getItem(storageKey);
    return raw ? (JSON.parse(raw) as Local) : undefined;
  } catch {
    return undefined;
  }
}

function writeLocal(l: Local | undefined) {
  try {
    if (l) localStorage.setItem(storageKey, JSON.stringify(l));
    else localStorage.removeItem(storageKey);
  } catch {
    /* storage unavailable: stay roaming */
  }
}

function eraseLocal() {
  try {
    localStorage.clear();
    sessionStorage.clear();
  } catch {
    /* nothing to erase */
  }
}

// ------------------------------------------------------------ shell

function exitButton() {
  return h(
    "button",
    { class: "exit", type: "button", "aria-describedby": "exit-hint", onclick: () => quickExit() },
    t("exit"),
    h("span", { id: "exit-hint", class: "sr-only" }, t("exitHint")),
  );
}

function show(...nodes: Node[]) {
  document.documentElement.lang = lang();
  document.documentElement.dir = dir();
  root.replaceChildren(exitButton(), ...nodes);
}

function languagePicker(rerender: () => void) {
  const id = "lang-select";
  const sel = h(
    "select",
    {
      id,
      onchange: (e: Event) => {
        setLang((e.target as HTMLSelectElement).value as Lang);
        rerender();
      },
    },
    ...languages.map((l) => h("option", { value: l.code, lang: l.code, selected: l.code === lang() }, l.name)),
  );
  return h("div", {}, h("label", { for: id }, t("language")), sel);
}

function field(id: string, label: Key, type = "text", extra: Record<string, string> = {}) {
  return [h("label", { for: id }, t(label)), h("input", { id, name: id, type, autocomplete: "off", spellcheck: "false", ...extra })];
}

function value(id: string) {
  return (document.getElementById(id) as HTMLInputElement).value;
}

function busy(form: HTMLFormElement, on: boolean, error?: string) {
  for (const b of form.querySelectorAll("button")) (b as HTMLButtonElement).disabled = on;
  const status = form.querySelector(".status")!;
  status.textContent = on ? t("working") : (error ?? "");
  status.className = error ? "status error" : "status";
}

// ------------------------------------------------------------ cover

function renderCover() {
  document.title = config.title;
  document.documentElement.lang = "en";
  document.documentElement.dir = "ltr";
  const c = config.cover;
  let taps: number[] = [];
  const logo = h(
    "button",
    {
      class: "logo",
      type: "button",
      "aria-label": config.siteName,
      onclick: () => {
        const now = performance.now();
        taps = [...taps.filter((x) => now - x < 4000), now];
        if (taps.length >= config.unlockTaps) {
          taps = [];
          renderUnlock();
        }
      },
    },
    h("img", { src: "./favicon.svg", alt: "" }),
    config.siteName,
  );
  root.replaceChildren(
    exitButtonCover(),
    h(
      "div",
      { class: "cover" },
      h("header", {}, logo, h("nav", { "aria-label": "Sections" }, ...["Baking", "Quick dinners", "Seasonal"].map((s) => h("a", { href: "#", onclick: (e: Event) => e.preventDefault() }, s)))),
      h(
        "main",
        {},
        h("h1", {}, c.heading),
        h("p", { class: "byline" }, c.byline),
        h("p", {}, c.intro),
        h("h2", {}, "Ingredients"),
        h("ul", {}, ...c.ingredients.map((i) => h("li", {}, i))),
        h("h2", {}, "Method"),
        h("ol", {}, ...c.method.map((m) => h("li", {}, m))),
        h("p", { class: "tip" }, c.tip),
      ),
      h("footer", {}, c.footer),
    ),
  );
}

// On the cover the exit button must look like it belongs to any page.
function exitButtonCover() {
  return h("button", { class: "exit", type: "button", onclick: () => quickExit() }, "Exit");
}

// ------------------------------------------------------------ unlock

function emergencyBar() {
  return h(
    "nav",
    { class: "help", "aria-label": t("help") },
    h("strong", {}, t("help")),
    ...config.emergency.map((e) =>
      h("a", { href: "tel:" + e.number.replace(/\s+/g, "") }, `${t("call")} ${e.number}`, h("span", { class: "label" }, ` – ${e.label[lang()] ?? e.label.en}`)),
    ),
  );
}

function renderUnlock(mode?: "pin" | "code" | "invite") {
  const local = readLocal();
  const m = mode ?? (local ? "pin" : "code");
  const rerender = () => renderUnlock(m);
  const server = config.server || defaultServerUrl();
  let form: HTMLFormElement;
  if (m === "pin" && local) {
    form = h(
      "form",
      {
        class: "card",
        onsubmit: (e: Event) => {
          e.preventDefault();
          void unlockLocal(form, local, value("pin"), server);
        },
      },
      h("h1", {}, t("pinTitle")),
      ...field("pin", "passphrase", "password"),
      h("button", { class: "primary", type: "submit" }, t("unlock")),
      h("p", { class: "status", role: "status", "aria-live": "polite" }),
      h("button", { class: "secondary", type: "button", onclick: () => renderUnlock("code") }, t("useCode")),
    );
  } else if (m === "invite") {
    form = h(
      "form",
      {
        class: "card",
        onsubmit: (e: Event) => {
          e.preventDefault();
          void doRegister(form, server);
        },
      },
      h("h1", {}, t("newHere")),
      ...field("invite", "invite"),
      ...field("name", "yourName"),
      ...field("new-passphrase", "choosePassphrase", "password", { minlength: "8" }),
      h("button", { class: "primary", type: "submit" }, t("create")),
      h("p", { class: "status", role: "status", "aria-live": "polite" }),
      h("button", { class: "secondary", type: "button", onclick: () => renderUnlock("code") }, t("haveAccount")),
    );
  } else {
    form = h(
      "form",
      {
        class: "card",
        onsubmit: (e: Event) => {
          e.preventDefault();
          void doLogin(form, server);
        },
      },
      h("h1", {}, t("openTitle")),
      ...field("account-code", "accountCode", "text", { autocapitalize: "characters" }),
      ...field("passphrase", "passphrase", "password"),
      h("button", { class: "primary", type: "submit" }, t("open")),
      h("p", { class: "status", role: "status", "aria-live": "polite" }),
      h("button", { class: "secondary", type: "button", onclick: () => renderUnlock("invite") }, t("newHere")),
    );
  }
  show(h("div", { class: "app" }, h("div", { class: "bar" }, languagePicker(rerender)), form));
  (form.querySelector("input") as HTMLInputElement).focus();
}

async function doLogin(form: HTMLFormElement, server: string) {
  busy(form, true);
  try {
    const c = await HavenClient.login(server, value("account-code"), value("passphrase"));
    enterChat(c);
  } catch (e) {
    busy(form, false, e instanceof ClientError && (e.code === "wrong_passphrase" || e.code === "bad_account_code") ? t("wrongPassphrase") : t("failed"));
  }
}

async function doRegister(form: HTMLFormElement, server: string) {
  const pass = value("new-passphrase");
  if (pass.length < 8) return busy(form, false, t("choosePassphrase"));
  busy(form, true);
  try {
    const c = await HavenClient.register(server, value("invite").trim(), value("name").trim(), pass);
    client = c;
    show(
      h(
        "div",
        { class: "app" },
        h(
          "div",
          { class: "card" },
          h("h1", {}, t("accountCode")),
          h("p", {}, t("accountCreated")),
          h("p", { class: "code", id: "account-code-display" }, c.accountCode),
          h("button", { class: "primary", type: "button", onclick: () => enterChat(c) }, t("continue")),
        ),
      ),
    );
  } catch {
    busy(form, false, t("failed"));
  }
}

async function unlockLocal(form: HTMLFormElement, local: Local, pin: string, server: string) {
  busy(form, true);
  const input = new TextEncoder().encode(pin);
  // The duress PIN is checked first, with the same work as the real one.
  if (local.d) {
    try {
      const sealed = fromHex(local.d);
      const keys = deriveVaultKeys(input, readVaultHeader(sealed));
      const bundle = JSON.parse(new TextDecoder().decode(openVault(keys, sealed)));
      return duress(bundle);
    } catch {
      /* not the duress PIN */
    }
  }
  try {
    const c = await HavenClient.openLocal(server, { vaultId: fromHex(local.v), sealed: fromHex(local.s) }, pin);
    enterChat(c);
  } catch (e) {
    const wrong = !(e instanceof Error) || (e as { code?: string }).code === "wrong_passphrase";
    busy(form, false, wrong ? t("wrongPassphrase") : t("failed"));
  }
}

// ------------------------------------------------------------ duress

function duress(bundle: Record<string, string | number>) {
  eraseLocal();
  wipeAll();
  renderDecoy();
  if (bundle.sealed) {
    const alert: AlertBundle = {
      server: String(bundle.server),
      mailboxId: fromHex(String(bundle.mailboxId)),
      deviceId: Number(bundle.deviceId),
      deviceSeed: fromHex(String(bundle.deviceSeed)),
      to: fromHex(String(bundle.to)),
      toDevice: Number(bundle.toDevice),
      accessKey: fromHex(String(bundle.accessKey)),
      sealed: fromHex(String(bundle.sealed)),
    };
    void sendAlert(alert)
      .catch(() => undefined)
      .finally(() => alert.deviceSeed.fill(0));
  }
}

function renderDecoy() {
  show(
    h(
      "div",
      { class: "app decoy" },
      h("h1", {}, t("notes")),
      h("ul", { class: "messages" }, ...t("decoyNotes").split("\n").map((n) => h("li", { class: "in" }, n))),
    ),
  );
}

// ------------------------------------------------------------ chat

function enterChat(c: HavenClient) {
  client = c;
  c.onMessage = (m: Incoming) => {
    if (client !== c) return;
    if (!selected) selected = m.contact;
    renderChat();
    document.getElementById("message-list")?.lastElementChild?.scrollIntoView();
    void m;
  };
  c.onSaved = (copy: LocalCopy) => {
    const l = readLocal();
    if (l) writeLocal({ ...l, v: hex(copy.vaultId), s: hex(copy.sealed) });
  };
  let backoff = 500;
  c.onConnection = (online) => {
    if (client !== c) return;
    const s = document.getElementById("conn");
    if (s) s.textContent = online ? "" : t("offline");
    if (!online)
      setTimeout(() => {
        backoff = Math.min(backoff * 2, 30_000);
        c.reconnect().then(() => (backoff = 500)).catch(() => c.onConnection(false));
      }, backoff);
  };
  if (!selected) selected = c.contacts()[0]?.name;
  renderChat();
}

function lock() {
  wipeAll();
  renderCover();
}

function renderChat() {
  const c = client;
  if (!c) return renderCover();
  const contacts = c.contacts();
  const current = contacts.find((x) => x.name === selected);
  const list = h(
    "ul",
    { class: "messages", id: "message-list", "aria-live": "polite", "aria-label": t("message") },
    ...(current?.history ?? []).map((m) =>
      h("li", { class: m.outgoing ? "out" : "in" }, h("span", { class: "sr-only" }, m.outgoing ? t("you") + ": " : (current?.name ?? "") + ": "), m.text),
    ),
  );
  const composer = h(
    "form",
    {
      class: "composer",
      onsubmit: (e: Event) => {
        e.preventDefault();
        const box = document.getElementById("compose") as HTMLTextAreaElement;
        const text = box.value.trim();
        if (!text || !selected) return;
        box.disabled = true;
        c.send(selected, text)
          .then(() => renderChat())
          .catch(() => {
            box.disabled = false;
            document.getElementById("send-status")!.textContent = t("failed");
          });
      },
    },
    h("label", { for: "compose", class: "sr-only" }, t("message")),
    h("textarea", {
      id: "compose",
      rows: "2",
      onkeydown: (e: Event) => {
        const k = e as KeyboardEvent;
        if (k.key === "Enter" && !k.shiftKey) {
          k.preventDefault();
          (k.target as HTMLTextAreaElement).form!.requestSubmit();
        }
      },
    }),
    h("button", { class: "primary", type: "submit" }, t("send")),
  );
  const addForm = h(
    "form",
    {
      onsubmit: (e: Event) => {
        e.preventDefault();
        const name = value("contact-name").trim();
        c.addContact(name, value("contact-code"))
          .then(() => {
            selected = name;
            renderChat();
          })
          .catch(() => (document.getElementById("add-status")!.textContent = t("badCode")));
      },
    },
    ...field("contact-name", "contactName"),
    h("label", { for: "contact-code" }, t("contactCode")),
    h("textarea", { id: "contact-code", rows: "3", spellcheck: "false" }),
    h("button", { class: "primary", type: "submit" }, t("add")),
    h("p", { id: "add-status", class: "error", role: "status" }),
  );
  const local = readLocal();
  const settings = h(
    "form",
    {
      onsubmit: (e: Event) => {
        e.preventDefault();
        void saveSettings();
      },
    },
    h("label", {}, h("input", { type: "checkbox", id: "own-device", checked: !!local }), " ", t("ownDevice")),
    ...field("duress-pin", "duressPin", "password"),
    h("label", { for: "alert-contact" }, t("alertContact")),
    h("select", { id: "alert-contact" }, h("option", { value: "" }, t("none")), ...contacts.filter((x) => x.accessKey.length).map((x) => h("option", { value: x.name }, x.name))),
    h("button", { class: "primary", type: "submit" }, t("save")),
    h("p", { id: "settings-status", role: "status" }),
  );
  show(
    h(
      "div",
      { class: "app" },
      h(
        "div",
        { class: "bar" },
        emergencyBar(),
        languagePicker(renderChat),
        h("button", { class: "secondary", type: "button", onclick: lock }, t("lock")),
        h("span", { id: "conn", role: "status" }, c.online ? "" : t("offline")),
      ),
      h(
        "div",
        { class: "chat" },
        h(
          "section",
          { class: "contacts", "aria-labelledby": "contacts-h" },
          h("h2", { id: "contacts-h" }, t("contacts")),
          contacts.length === 0 ? h("p", {}, t("noContacts")) : null,
          h(
            "ul",
            {},
            ...contacts.map((x) =>
              h("li", {}, h("button", { type: "button", "aria-current": x.name === selected ? "true" : "false", onclick: () => { selected = x.name; renderChat(); } }, x.name)),
            ),
          ),
        ),
        h(
          "section",
          { class: "conversation", "aria-label": current?.name ?? t("message") },
          h("h2", {}, current?.name ?? ""),
          list,
          current ? composer : null,
          h("p", { id: "send-status", class: "error", role: "status" }),
        ),
      ),
      h("details", {}, h("summary", {}, t("addContact")), addForm),
      h(
        "details",
        {},
        h("summary", {}, t("myCode")),
        h("label", { for: "my-code" }, t("myCode")),
        h("textarea", { id: "my-code", class: "mycode", readonly: true }, c.contactCode()),
        h("p", {}, t("accountCode") + ": ", h("span", { class: "code", id: "account-code-chat" }, c.accountCode)),
      ),
      h("details", {}, h("summary", {}, t("settings")), settings),
    ),
  );
  list.lastElementChild?.scrollIntoView();
}

async function saveSettings() {
  const c = client;
  if (!c) return;
  const status = document.getElementById("settings-status")!;
  const own = (document.getElementById("own-device") as HTMLInputElement).checked;
  const pin = value("duress-pin");
  const alertTo = (document.getElementById("alert-contact") as HTMLSelectElement).value;
  if (!own) {
    writeLocal(undefined);
    status.textContent = t("saved");
    return;
  }
  const copy = c.localCopy();
  const l: Local = { v: hex(copy.vaultId), s: hex(copy.sealed), d: readLocal()?.d };
  if (pin) {
    status.textContent = t("working");
    let bundle: Record<string, string | number> = {};
    if (alertTo) {
      const b = await c.prepareAlert(alertTo, t("alertText"));
      bundle = {
        server: b.server,
        mailboxId: hex(b.mailboxId),
        deviceId: b.deviceId,
        deviceSeed: hex(b.deviceSeed),
        to: hex(b.to),
        toDevice: b.toDevice,
        accessKey: hex(b.accessKey),
        sealed: hex(b.sealed),
      };
      b.deviceSeed.fill(0);
    }
    const keys = deriveVaultKeys(new TextEncoder().encode(pin), newVaultHeader(systemRandom));
    l.d = hex(sealVault(keys, new TextEncoder().encode(JSON.stringify(bundle)), systemRandom));
    keys.encKey.fill(0);
    keys.authKey.fill(0);
    // The copy must include the advanced ratchet of the prepared alert.
    const fresh = c.localCopy();
    l.s = hex(fresh.sealed);
  }
  writeLocal(l);
  status.textContent = t("saved");
}

// ------------------------------------------------------------ start

async function start() {
  const res = await fetch("./config.json", { cache: "no-store", credentials: "omit" });
  config = (await res.json()) as Config;
  setLang(config.defaultLanguage ?? "en");
  configureExit(config.exitUrl, () => {
    wipeAll();
  });
  installExitKeys();
  renderCover();
  await sodiumReady();
}

void start();
