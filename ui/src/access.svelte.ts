// What the console may offer: on a shared registry, the member's role
// decides (the engine refuses the rest anyway); on a one-person registry,
// everything. Asked of the engine on every screen change, so a role changed
// elsewhere shows at the next screen.
import type { Access } from "./bindings/Access";
import type { Action } from "./bindings/Action";
import { call } from "./ipc";

const ALL: Access = { caller: null, members: [], allowed: [] };

export const access: { now: Access; everything: boolean } = $state({ now: ALL, everything: true });

/** Whether the current workspace's user may take `action`. */
export function may(action: Action): boolean {
  return access.everything || access.now.allowed.includes(action);
}

/** Asks the engine again (the router calls it before each screen). */
export async function refreshAccess(): Promise<void> {
  const a = await call<Access | null>("access").catch(() => null);
  // If the registry cannot say, everything is offered: the engine checks the
  // role of every command itself and refuses with the reason.
  access.now = a ?? ALL;
  access.everything = !a || a.members.length === 0;
}
