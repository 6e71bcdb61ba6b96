// What every component test file shares: a fresh page and fleet state for
// each case, the IPC calls seen, and a wait for pending IPC and redraws.
import { afterEach, beforeEach } from "vitest";
import { clearMocks } from "@tauri-apps/api/mocks";
import { forgetFleets } from "../src/app";

/** The IPC calls a case's mock saw, in order (its mock pushes them). */
export const calls: { cmd: string; args: unknown }[] = [];

/** Registers the page reset before and after each case of the file. */
export function freshPage(): void {
  beforeEach(() => {
    document.body.innerHTML = '<nav><a href="#/">Fleet</a></nav><main id="view"></main>';
    calls.length = 0;
    forgetFleets();
  });
  afterEach(() => {
    clearMocks();
    location.hash = "";
  });
}

/** Lets pending IPC promises and the list's redraws run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 8; i++) await new Promise((r) => setTimeout(r, 20));
}

/**
 * The channel a mocked command was given (`onProgress`, `onStep`, …): a
 * function that sends it messages in order, as the engine does.
 */
export function channelOf(args: unknown, name: string): (message: unknown) => void {
  const id = (args as Record<string, { id: number }>)[name].id;
  const internals = (window as unknown as { __TAURI_INTERNALS__: { runCallback: (id: number, data: unknown) => void } }).__TAURI_INTERNALS__;
  let index = 0;
  return (message) => internals.runCallback(id, { index: index++, message });
}
