import { spawn } from "node:child_process";
import { resolve } from "node:path";
import { expect, test, type Page } from "@playwright/test";
import { createToken, expectNoSidewaysScroll, waitForHydration, watchConsole } from "./helpers";

const PATH = "/desktop/recap/job-status";
const BINARY = process.env.JOBDECK_BIN ?? resolve(__dirname, "../../target/debug/jobdeck");

/** `jobdeck sim` driving one recap job through the HTTP APIs; resolves when it exits. */
function simulate(token: string, failEvery: number): Promise<number> {
  const sim = spawn(
    BINARY,
    ["sim", "--concurrency", "1", "--jobs", "1", "--speed", "3", "--fail-every", String(failEvery)],
    {
      // No webhook secret: its script reports would change the incidents the other tests count.
      env: {
        ...process.env,
        TC_PORTAL_WEBHOOK_SECRET: "",
        JOBDECK_URL: test.info().project.use.baseURL!,
        JOBDECK_TOKEN: token,
      },
      stdio: ["ignore", "inherit", "inherit"],
    },
  );
  return new Promise((done, fail) => {
    sim.on("error", fail);
    sim.on("exit", (code) => done(code ?? -1));
  });
}

/** Where the pipeline of the card of `jobId` is: the index of its running stage, or 8 when
 * no stage runs any more. */
async function runningStage(page: Page, jobId: string): Promise<number> {
  return page.evaluate((id) => {
    const card = document.querySelector(`[data-testid="active-job"][data-job-id="${id}"]`);
    if (!card) return 8;
    const stages = [...card.querySelectorAll("[data-stage]")];
    const at = stages.findIndex((s) => s.getAttribute("data-state") === "running");
    return at < 0 ? 8 : at;
  }, jobId);
}

test("the dashboard follows jobdeck sim live, shows a failure, and stops polling while hidden", async ({ page }) => {
  test.setTimeout(150_000);
  const token = await createToken(page, "operator");
  const problems = watchConsole(page);
  const polls: string[] = [];
  page.on("request", (r) => {
    if (r.url().includes(PATH) && r.resourceType() === "fetch") polls.push(r.url());
  });

  await page.goto(PATH);
  await waitForHydration(page);
  await expect(page.locator("h1")).toHaveText("Recap ジョブ状況");

  // One job that does not fail: it appears, its pipeline advances, it lands in the history,
  // all without a reload.
  const firstRun = simulate(token, 0);
  const card = page.getByTestId("active-job").first();
  await expect(card).toBeVisible({ timeout: 20_000 });
  const jobId = (await card.getAttribute("data-job-id"))!;
  const firstStage = await runningStage(page, jobId);
  await expect(card.locator('[data-state="running"]')).toHaveCount(1);
  await page.screenshot({ path: "test-results/screens/recap-active.png", fullPage: true });
  await expect.poll(() => runningStage(page, jobId), { timeout: 40_000 }).toBeGreaterThan(firstStage);
  expect(await firstRun).toBe(0);
  const row = page.locator(`[data-testid="job-history"] tr[data-job-id="${jobId}"]`);
  await expect(row).toHaveAttribute("data-status", "completed", { timeout: 15_000 });
  await expect(page.getByTestId("metric-jobs").locator(".metric-value")).not.toHaveText("0");

  // A job that fails: the history row and the last run both say why.
  expect(await simulate(token, 1)).toBe(0);
  const failed = page.locator('[data-testid="job-history"] tr[data-status="failed"]').first();
  await expect(failed).toBeVisible({ timeout: 15_000 });
  await expect(failed.locator(".history-error")).toHaveText(/TIMEOUT|RATE_LIMITED|PARSE_ERROR/);
  const lastRun = page.getByTestId("active-job");
  await expect(lastRun).toHaveAttribute("data-status", "failed");
  await expect(lastRun.getByTestId("job-error")).toHaveText(/TIMEOUT|RATE_LIMITED|PARSE_ERROR/);
  await expect(lastRun.locator('[data-state="failed"]')).toHaveCount(1);
  await page.screenshot({ path: "test-results/screens/recap-failed.png", fullPage: true });

  // Hidden: no request for 12 s (two intervals and more). Shown again: one at once.
  await page.evaluate(() => {
    Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
    Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
    document.dispatchEvent(new Event("visibilitychange"));
  });
  const before = polls.length;
  await page.waitForTimeout(12_000);
  expect(polls.length).toBe(before);
  await page.evaluate(() => {
    Object.defineProperty(document, "hidden", { configurable: true, get: () => false });
    Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "visible" });
    document.dispatchEvent(new Event("visibilitychange"));
  });
  await expect.poll(() => polls.length, { timeout: 2_000 }).toBeGreaterThan(before);

  // A 400-pixel window: nothing scrolls sideways.
  await page.setViewportSize({ width: 400, height: 800 });
  await expectNoSidewaysScroll(page);
  await page.screenshot({ path: "test-results/screens/recap-400.png", fullPage: false });

  expect(problems).toEqual([]);
});

test("the user filter is in the URL and narrows the dashboard", async ({ page }) => {
  const problems = watchConsole(page);
  await page.goto(PATH);
  await waitForHydration(page);
  await page.getByTestId("user-filter").fill("nobody-has-this-id");
  await page.getByTestId("user-filter").press("Enter");
  await expect(page).toHaveURL(/user_id=nobody-has-this-id/);
  await waitForHydration(page);
  await expect(page.getByTestId("user-filter")).toHaveValue("nobody-has-this-id");
  await expect(page.getByTestId("no-recap-jobs")).toBeVisible();
  await page.reload();
  await expect(page.getByTestId("user-filter")).toHaveValue("nobody-has-this-id");
  expect(problems).toEqual([]);
});

test("when the server does not answer, the dashboard keeps its data and says since when", async ({ page }) => {
  const problems = watchConsole(page);
  await page.goto(PATH);
  await waitForHydration(page);
  const metrics = page.locator('[data-live="recap-metrics"]');
  const shown = await metrics.innerHTML();
  // The refreshes (fetches of this same URL) fail; the page itself stays.
  const failing = (url: URL) => url.pathname === PATH;
  await page.route(failing, (route) =>
    route.request().resourceType() === "fetch" ? route.abort() : route.continue(),
  );
  const status = page.getByTestId("live-status");
  await expect(status).toHaveText(/^更新停止: \d{2}:\d{2}:\d{2}$/, { timeout: 12_000 });
  await expect(status).toHaveClass(/stale/);
  expect(await metrics.innerHTML()).toBe(shown);
  await page.screenshot({ path: "test-results/screens/recap-stale.png" });
  // Back: the mark goes on the next refresh.
  await page.unroute(failing);
  await expect(status).toBeEmpty({ timeout: 12_000 });
  // A refused fetch is reported by the browser itself; nothing else may be.
  expect(problems.filter((p) => !p.includes("Failed to load resource"))).toEqual([]);
});
