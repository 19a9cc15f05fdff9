// An image tree laid out as `<identity>/<file>` (torchvision's ImageFolder): its listing, identity ids and
// the id map written beside an annotation list. Names sort by code unit (JavaScript's default string order,
// Python's sorted() for names in the Basic Multilingual Plane), the one order every command here uses.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const IMAGE_EXTENSIONS: readonly string[] = ['.jpg', '.jpeg', '.png', '.webp'];

export interface FolderImage {
  /** contiguous identity id: the index of `identity` in the sorted folder names */
  readonly id: number;
  readonly identity: string;
  /** `<identity>/<file>`, relative to the tree's root, '/'-separated */
  readonly file: string;
}

export interface ImageFolderListing {
  /** identity folder names, sorted; id = index */
  readonly identities: string[];
  readonly images: FolderImage[];
}

const byCodeUnit = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export const isImageName = (name: string): boolean =>
  IMAGE_EXTENSIONS.some((e) => name.toLowerCase().endsWith(e));

/**
 * Lists the images of an ImageFolder tree. Identities are the sub-folders that hold at least one image
 * (others are left out, so the ids stay contiguous); files directly under the root are not in any identity
 * and are ignored.
 */
export function listImageFolder(root: string): ImageFolderListing {
  let entries: string[];
  try {
    entries = readdirSync(root);
  } catch (e) {
    throw new Error(`${root}: cannot read the folder (${(e as Error).message})`);
  }
  const identities: string[] = [];
  const images: FolderImage[] = [];
  for (const name of entries.sort(byCodeUnit)) {
    const dir = join(root, name);
    if (!statSync(dir).isDirectory()) continue;
    const files = readdirSync(dir)
      .filter((f) => isImageName(f) && statSync(join(dir, f)).isFile())
      .sort(byCodeUnit);
    if (files.length === 0) continue;
    const id = identities.length;
    identities.push(name);
    for (const f of files) images.push({ id, identity: name, file: `${name}/${f}` });
  }
  if (images.length === 0)
    throw new Error(`${root}: no images in <identity>/<file> layout (${IMAGE_EXTENSIONS.join(', ')})`);
  for (const name of identities) {
    if (/\s/.test(name))
      throw new Error(`${root}/${name}: folder names with spaces cannot go into an "id file age gender" list`);
  }
  return { identities, images };
}

/** Where the folder → id map of an annotation list is written: `train.txt` → `train.identities.txt`. */
export function identityMapPath(listFile: string): string {
  return listFile.replace(/(\.txt)?$/, '.identities.txt');
}

/** The id map's text: `id folder` per line, in id order. */
export function formatIdentityMap(identities: readonly string[]): string {
  return identities.map((name, id) => `${id} ${name}\n`).join('');
}
