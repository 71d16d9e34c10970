/**
 * People by name: the console shows a local user's username where the data holds their id
 * (a principal `oauth:<issuer>#<user id>`, a `sub`, a key's creator), with the id in the
 * element's title (on hover) and on detail pages. The names of one page are read in one query
 * (src/admin/users.ts usersById), never one per row.
 */
import { usersById } from "../admin/users.js";
import type { LocalUser } from "../oauth/users.js";
import type { Store } from "../store/types.js";
import { type Html, html } from "./html.js";

/** Users by id, as read for one page. */
export type People = ReadonlyMap<string, LocalUser>;

/** The local user id a principal or sub names, if any. */
export function userIdOf(principalOrSub: string | null | undefined): string | null {
  if (principalOrSub === null || principalOrSub === undefined) return null;
  const id = /(?:^|#)(u_[A-Za-z0-9_-]{1,64})$/.exec(principalOrSub)?.[1];
  return id ?? null;
}

/** The users that these principals (or subs) name, in one query. */
export function peopleOf(store: Store, principals: Iterable<string | null | undefined>): Promise<People> {
  const ids = new Set<string>();
  for (const p of principals) {
    const id = userIdOf(p);
    if (id !== null) ids.add(id);
  }
  return usersById(store, ids);
}

/** A principal as a person's name (the id on hover), or as it is when it names no local user. */
export function who(principal: string | null | undefined, people: People): Html {
  if (principal === null || principal === undefined || principal === "") return html`—`;
  const id = userIdOf(principal);
  const user = id === null ? undefined : people.get(id);
  if (user === undefined) return html`<span class="principal">${principal}</span>`;
  return html`<span class="person" title="${principal}">${user.username}</span>`;
}
