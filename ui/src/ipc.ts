// The console's IPC: every engine command names the workspace (the user's
// registry or the demo's), so nothing hides in session state. Shared by
// app.ts and the Svelte screens.
import { invoke } from "@tauri-apps/api/core";
import type { IpcError } from "./bindings/IpcError";
import type { Workspace } from "./bindings/Workspace";

/**
 * Which registry the current screen is about: the user's own (`#/…`) or the
 * built-in demo fleet, which has a registry of its own (`#/demo/…`).
 */
let ws: Workspace = "own";

export function workspace(): Workspace {
  return ws;
}

/** The router sets it from the address, before a screen loads. */
export function setWorkspace(w: Workspace): void {
  ws = w;
}

/** Invokes an engine command on the current workspace. */
export function call<T>(cmd: string, args: Record<string, unknown> = {}): Promise<T> {
  return invoke<T>(cmd, { workspace: ws, ...args });
}

/** A link to a screen of the current workspace. */
export function link(...path: string[]): string {
  return `#/${ws === "demo" ? "demo/" : ""}${path.map(encodeURIComponent).join("/")}`;
}

export function isIpcError(e: unknown): e is IpcError {
  return typeof e === "object" && e !== null && "code" in e && "message" in e;
}

/** The engine's `{code, message}` as one line: what failed and what to do. */
export function errorText(e: unknown): string {
  return isIpcError(e) ? `${e.message} (${e.code})` : String(e);
}
