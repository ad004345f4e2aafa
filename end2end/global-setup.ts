import { request, type FullConfig } from "@playwright/test";

/** Signs in once as the admin scripts/test created, for the tests that start signed in. */
export default async function globalSetup(config: FullConfig) {
  const baseURL = config.projects[0].use.baseURL!;
  const context = await request.newContext({ baseURL });
  const response = await context.post("/login", {
    data: { email: process.env.JOBDECK_ADMIN_EMAIL, password: process.env.JOBDECK_ADMIN_PASSWORD },
  });
  if (response.status() !== 200) {
    throw new Error(`admin login failed: ${response.status()} ${await response.text()}`);
  }
  await context.storageState({ path: "test-results/admin.json" });
  await context.dispose();
}
