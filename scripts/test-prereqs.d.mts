// Types of scripts/test-prereqs.mjs (plain JavaScript so that it runs before anything is built).

export interface Prereq {
  /** What the tests and messages call it. */
  name: string;
  /** Commands that must all be on PATH. */
  commands?: string[];
  /** An interpreter that must import `module`. */
  python?: string;
  module?: string;
  /** A file that must exist. */
  file?: string;
  /** Other commands a test spawns that this package brings. */
  aliases?: string[];
  /** The Debian/Ubuntu package that brings it. */
  package: string;
  /** Which tests need it. */
  for: string;
}

export type How = 'root' | 'sudo' | 'tell' | 'no-apt';

export interface Plan {
  action: 'none' | 'install' | 'tell';
  missing: Prereq[];
  /** Sorted, without duplicates. */
  packages: string[];
  /** The commands run (install) or to run (tell). */
  commands: string[];
  noApt?: boolean;
}

export const PREREQS: readonly Prereq[];
export function findPrereqs(prereqs: readonly Prereq[], names: string[]): Prereq[];
export function installPlan(missing: Prereq[], how: How): Plan;
export function planMessage(plan: Plan): string;
export function toolMessage(p: Prereq): string;
export function isPresent(p: Prereq): boolean;
