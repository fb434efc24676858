/**
 * Levelled logging to stderr (our stand-in for @std/log): one global level, shared by
 * the main thread and passed to every Worker.
 *
 * @module
 */

/** Log levels, most severe first (crosvm's `--log-level` names). */
export const LOG_LEVELS = ["off", "error", "warn", "info", "debug", "trace"] as const;
/** One of {@link LOG_LEVELS}. */
export type LogLevel = typeof LOG_LEVELS[number];

let current: LogLevel = "info";

/** True when `text` names a log level. */
export function isLogLevel(text: string): text is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(text);
}

/** Sets the level for this thread. */
export function setLogLevel(level: LogLevel): void {
  current = level;
}

/** The level of this thread. */
export function logLevel(): LogLevel {
  return current;
}

/** True when messages at `level` are printed. */
export function enabled(level: Exclude<LogLevel, "off">): boolean {
  return LOG_LEVELS.indexOf(level) <= LOG_LEVELS.indexOf(current);
}

/** Levels whose lines also say when, in ms since this thread (or process) started. */
const TIMED_LEVELS: readonly LogLevel[] = ["debug", "trace"];

function emit(level: Exclude<LogLevel, "off">, message: string): void {
  if (!enabled(level)) return;
  const when = TIMED_LEVELS.includes(level) ? ` ${performance.now().toFixed(1)}ms` : "";
  console.error(`[${level.toUpperCase()}${when}] ${message}`);
}

/** Logs an error. */
export const error = (message: string): void => emit("error", message);
/** Logs a warning. */
export const warn = (message: string): void => emit("warn", message);
/** Logs progress a user may want. */
export const info = (message: string): void => emit("info", message);
/** Logs detail for debugging. */
export const debug = (message: string): void => emit("debug", message);
