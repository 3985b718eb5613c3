// Randomness is injected (docs/PROTOCOL.md section 10) so vectors replay.
import { sodium } from "./sodium";

export type RandomSource = (n: number) => Uint8Array;

export const systemRandom: RandomSource = (n) => sodium.randombytes_buf(n);

/** Answers requests from a recorded list of draws, checking their sizes. */
export function replayRandom(draws: Uint8Array[]): RandomSource {
  let i = 0;
  return (n) => {
    const d = draws[i++];
    if (!d || d.length !== n) throw new Error(`replayRandom: draw ${i - 1} has the wrong size`);
    return d.slice();
  };
}
