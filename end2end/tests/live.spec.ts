import { spawn } from "node:child_process";
import { resolve } from "node:path";
import { expect, request as http, test, type APIRequestContext, type Page } from "@playwright/test";
import { createToken, waitForHydration, watchConsole } from "./helpers";

const BINARY = process.env.JOBDECK_BIN ?? resolve(__dirname, "../../target/debug/jobdeck");

/** A running job of the simulator's dispatched demo queue, once there is one. */
async function runningDemoJob(request: APIRequestContext, token: string): Promise<string> {
  let id = "";
  await expect
    .poll(
      async () => {
        const response = await request.post("/job-operations", {
          headers: { Authorization: `Bearer ${token}` },
          data: { action: "fetchJobHistory", data: { filters: { status: ["running"] }, pagination: { per_page: 100 } } },
        });
        const jobs: any[] = (await response.json()).data?.jobs ?? [];
        id = jobs.find((job) => job.queue === "demo")?.id ?? "";
        return id;
      },
      { timeout: 60_000, intervals: [500] },
    )
    .not.toBe("");
  return id;
}

async function samples(page: Page, chart: string): Promise<number> {
  return Number(await page.getByTestId(`chart-${chart}`).getAttribute("data-samples"));
}

test("a job page's charts grow live over its event stream while jobdeck sim runs", async ({ page }) => {
  test.setTimeout(150_000);
  const token = await createToken(page, "operator");
  const problems = watchConsole(page);
  // One worker running the demo's dispatched jobs; no webhook secret (its script reports
  // would change the incidents the other tests count).
  const sim = spawn(BINARY, ["sim", "--concurrency", "1", "--speed", "1", "--fail-every", "0", "--workers", "1"], {
    env: {
      ...process.env,
      TC_PORTAL_WEBHOOK_SECRET: "",
      JOBDECK_URL: test.info().project.use.baseURL!,
      JOBDECK_TOKEN: token,
    },
    stdio: ["ignore", "inherit", "inherit"],
  });
  // Bearer token only, no browser cookie (a cookie would need a same-origin request).
  const api = await http.newContext({
    baseURL: test.info().project.use.baseURL,
    storageState: { cookies: [], origins: [] },
  });
  try {
    const id = await runningDemoJob(api, token);
    const pageReads: number[] = [];
    page.on("request", (r) => {
      if (new URL(r.url()).pathname === `/jobs/${id}`) pageReads.push(Date.now());
    });
    await page.goto(`/jobs/${id}`);
    await waitForHydration(page);
    // The page follows the job's own stream (not the 5 s poll).
    expect(await page.evaluate(() => (window as any).__jobdeckStream)).toBe(`/v1/jobs/${id}/events`);
    await page.evaluate(() => ((window as any).__notReloaded = true));
    const first = await samples(page, "memory");
    // The worker's heartbeats carry samples; each one reaches the open page within seconds.
    await expect.poll(() => samples(page, "memory"), { timeout: 30_000 }).toBeGreaterThan(first + 3);
    await expect(page.getByTestId("chart-memory").locator("svg")).toBeVisible();
    await expect(page.getByTestId("chart-cpu").locator("svg")).toBeVisible();
    expect(await page.evaluate(() => (window as any).__notReloaded)).toBe(true);
    // The stream's news brings refreshes closer together than the 5 s poll ever does.
    const gaps = pageReads.slice(2).map((t, i) => t - pageReads[i + 1]);
    expect(gaps.length).toBeGreaterThan(0);
    expect(Math.min(...gaps)).toBeLessThan(4_000);
    await page.screenshot({ path: "test-results/screens/job-live-charts.png", fullPage: true });
  } finally {
    sim.kill("SIGTERM");
  }
  expect(problems).toEqual([]);
});
