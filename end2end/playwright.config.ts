import { defineConfig } from "@playwright/test";

// scripts/test starts the server and sets JOBDECK_E2E_URL; Debian's Chromium is used because
// Playwright's own browser download cannot run here.
export default defineConfig({
  testDir: "./tests",
  timeout: 60_000,
  expect: { timeout: 15_000 },
  fullyParallel: false,
  workers: 1,
  reporter: [["list"]],
  globalSetup: "./global-setup.ts",
  use: {
    // Signed in as the admin; tests of signing in start from an empty state instead.
    storageState: "test-results/admin.json",
    // The operators of the seeds work in Japanese; the English test overrides this.
    locale: "ja-JP",
    baseURL: process.env.JOBDECK_E2E_URL ?? "http://127.0.0.1:3000",
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
    },
  },
});
