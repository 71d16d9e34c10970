/** Small key/value facts (table `settings`), e.g. the generated server secret's fingerprint. */
import type { SettingsRepository } from "../types.js";
import type { StoreContext } from "./context.js";

export class SqlSettingsRepository implements SettingsRepository {
  constructor(private readonly ctx: StoreContext) {}

  async getSetting(key: string): Promise<string | undefined> {
    const row = await this.ctx.db
      .selectFrom("settings")
      .select("value")
      .where("key", "=", key)
      .executeTakeFirst();
    return row?.value;
  }

  async setSetting(key: string, value: string): Promise<void> {
    await this.ctx.db
      .insertInto("settings")
      .values({ key, value })
      .onConflict((oc) => oc.column("key").doUpdateSet({ value: (eb) => eb.ref("excluded.value") }))
      .execute();
  }
}
