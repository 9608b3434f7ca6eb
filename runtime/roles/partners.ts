/** Reads and validates the partner configurations of the processor (`--partners` / PARTNERS_FILE). */
import { readFile } from 'node:fs/promises';
import { InvalidInputError } from '../../core/errors.ts';
import { parsePartners, type PartnerConfig } from '../../processors/executor/index.ts';

/** Throws InvalidInputError on the field `--partners` (unreadable, not JSON) or `partners[i].…` (schema). */
export async function loadPartners(path: string): Promise<PartnerConfig[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new InvalidInputError('--partners', `cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new InvalidInputError('--partners', `${path} is not valid JSON: ${(err as Error).message}`);
  }
  const partners = parsePartners(raw);
  if (partners.length === 0) throw new InvalidInputError('--partners', `${path} lists no partner: the processor would have nothing to run`);
  return partners;
}
