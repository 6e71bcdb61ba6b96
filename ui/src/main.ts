// Entry point: starts the console once the page is loaded.
import { start } from "./app";

window.addEventListener("DOMContentLoaded", start);
