/**
 * Warnings the CLI prints on stderr before it acts. A password given as a flag is visible to every
 * user of the machine (`ps`, shell history): the commands that accept one say so, and how to avoid it.
 */
export function warnPasswordFlag(password: unknown): void {
  if (typeof password !== "string") return;
  process.stderr.write("warning: a password on the command line is visible to other users of this machine (ps, shell history); use --credentials FILE (chmod 600) or COLONY_CREDENTIALS instead\n");
}
