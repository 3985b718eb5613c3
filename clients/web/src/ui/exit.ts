// Quick exit: a visible button on every screen, Shift pressed three times,
// or Esc twice. Blanks the page synchronously, wipes what the app holds,
// and leaves with location.replace so the page is gone from history.
let exitUrl = "about:blank";
let onWipe: () => void = () => {};
let leaving = false;

export function configureExit(url: string, wipe: () => void): void {
  exitUrl = url;
  onWipe = wipe;
}

export function quickExit(): void {
  if (leaving) return;
  leaving = true;
  // Blank first, in this very task: nothing of the page survives the next frame.
  document.documentElement.style.background = "#fff";
  document.body.replaceChildren();
  document.body.style.background = "#fff";
  document.title = "";
  try {
    onWipe();
  } catch {
    /* leaving anyway */
  }
  try {
    sessionStorage.clear();
  } catch {
    /* not available */
  }
  location.replace(exitUrl);
}

export function installExitKeys(): void {
  let shifts: number[] = [];
  let escapes: number[] = [];
  window.addEventListener(
    "keydown",
    (e) => {
      if (e.repeat) return;
      const now = performance.now();
      if (e.key === "Shift") {
        shifts = [...shifts.filter((t) => now - t < 2000), now];
        if (shifts.length >= 3) quickExit();
      } else if (e.key === "Escape") {
        escapes = [...escapes.filter((t) => now - t < 1500), now];
        if (escapes.length >= 2) quickExit();
      } else {
        shifts = [];
      }
    },
    true,
  );
}
