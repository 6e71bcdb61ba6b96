// One run of a wizard's journaled operation (a reset, a sync): busy while
// it runs, the journal's entries streamed live as the engine writes them,
// then its outcome or its error, the result box kept in view throughout.
import { Channel } from "@tauri-apps/api/core";
import { tick } from "svelte";
import type { JournalEvent } from "./bindings/JournalEvent";
import { errorText } from "./ipc";

export class WizardRun<T> {
  busy = $state(false);
  outcome: T | null = $state.raw(null);
  /** What failed and what to do, as the engine said it. */
  error = $state("");
  /** The failure itself (a sync tells an interruption apart by its code). */
  failure: unknown = $state.raw(null);
  /** The journal's entries for this run, as the engine writes them. */
  live: string[] = $state([]);
  /** The result box, scrolled into view and focused as the run goes. */
  result: HTMLElement | undefined = $state();

  /** Runs `start`, which gives the engine the channel its steps come back on. */
  async run(start: (onStep: Channel<JournalEvent>) => Promise<T>): Promise<void> {
    this.clear();
    this.busy = true;
    const channel = new Channel<JournalEvent>();
    channel.onmessage = (e) => (this.live = [...this.live, e.step]);
    void this.keepInView();
    try {
      this.outcome = await start(channel);
    } catch (e) {
      this.error = errorText(e);
      this.failure = e;
    } finally {
      this.busy = false;
      void this.keepInView();
    }
  }

  /** Forgets the last run (a new plan replaces what it was about). */
  clear(): void {
    this.outcome = null;
    this.error = "";
    this.failure = null;
    this.live = [];
  }

  private async keepInView(): Promise<void> {
    await tick();
    this.result?.scrollIntoView?.({ block: "nearest" });
    this.result?.focus({ preventScroll: true });
  }
}
