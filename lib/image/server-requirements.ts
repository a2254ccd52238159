import * as fs from 'node:fs';
import * as path from 'node:path';
import { MODEL_SERVER_DIR } from '../asset-paths';
import { InvalidPropError } from '../validation';

/** The requirement file each of the model server's images installs, in its build context. */
const REQUIREMENT_FILES = { cpu: 'requirements.txt', gpu: 'requirements-gpu.txt' } as const;

/**
 * An exact pin: a distribution name (PEP 508), optional extras, `==` and a version (PEP 440
 * characters only). Nothing else can reach the image's pip command line.
 */
const EXACT_PIN = /^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)(\[[A-Za-z0-9._,-]+\])?==([0-9][A-Za-z0-9.!+_-]*)$/;

/** A distribution's name as pip compares them (PEP 503): `Typing_Extensions` and `typing.extensions` are `typing-extensions`. */
export function normalize(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, '-');
}

/** The server's own pins in an image's requirement file: normalized name → `name==version`. */
function serverPins(image: keyof typeof REQUIREMENT_FILES): Map<string, string> {
  const text = fs.readFileSync(path.join(MODEL_SERVER_DIR, REQUIREMENT_FILES[image]), 'utf8');
  const pins = new Map<string, string>();
  for (const line of text.split('\n').map((l) => l.replace(/#.*/, '').trim()).filter(Boolean)) {
    pins.set(normalize(line.split('==')[0]), line);
  }
  return pins;
}

/** Refuses extra requirements that are not exact pins, or that pin a package the server pins. */
export function checkExtraRequirements(requirements: readonly string[], image: keyof typeof REQUIREMENT_FILES): void {
  const where = 'ServingImage.fromModelServer';
  const pins = serverPins(image);
  const seen = new Set<string>();
  for (const requirement of requirements) {
    const match = EXACT_PIN.exec(requirement);
    if (!match) {
      throw new InvalidPropError(where, 'extraRequirements',
        `'${requirement}' is not an exact pin; write it as name==version (e.g. 'lightgbm==4.7.0'), so every build installs the same`);
    }
    const name = normalize(match[1]);
    const pinned = pins.get(name);
    if (pinned) {
      throw new InvalidPropError(where, 'extraRequirements',
        `'${requirement}': the server pins ${pinned} (${REQUIREMENT_FILES[image]}); leave it out, the model gets the server's version`);
    }
    if (seen.has(name)) throw new InvalidPropError(where, 'extraRequirements', `'${requirement}': ${match[1]} is listed twice`);
    seen.add(name);
  }
}
