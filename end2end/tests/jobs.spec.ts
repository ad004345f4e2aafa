import { expect, request as http, test, type Page } from "@playwright/test";
import { createToken, op, waitForHydration, watchConsole } from "./helpers";

function stage(job_id: string, current_phase: string, progress: number) {
  return {
    job_id,
    status: "running",
    detailed_status: { current_phase, progress_percentage: progress, active_tasks: 2, error_count: 0 },
  };
}

test("a reported job moves through its stages without a reload, and an operator cancels it", async ({ page, browser }) => {
  const token = await createToken(page, "operator");
  const viewerToken = await createToken(page, "viewer");
  const problems = watchConsole(page);
  // The pipeline: bearer token only, no browser cookie (a cookie would need a same-origin request).
  const pipeline = await http.newContext({
    baseURL: test.info().project.use.baseURL,
    storageState: { cookies: [], origins: [] },
  });
  const created = await op(pipeline, token, "createJob", { kind: "recap", user_id: "e2e-user" });
  expect(created.status).toBe(201);
  const id: string = created.body.data.id;
  await op(pipeline, token, "addTasks", { job_id: id, tasks: [{ name: "tech" }, { name: "sports" }] });
  await op(pipeline, token, "updateBatchJob", stage(id, "Fetch", 5));

  await page.goto("/jobs?kind=recap");
  await waitForHydration(page);
  const row = page.locator(`tr[data-job-id="${id}"]`);
  await expect(row.locator(".status")).toHaveAttribute("data-status", "running");
  await page.screenshot({ path: "test-results/screens/jobs.png", fullPage: true });

  await row.getByRole("link").click();
  await expect(page).toHaveURL(new RegExp(`/jobs/${id}$`));
  await waitForHydration(page);
  await expect(page.getByTestId("job-phase")).toHaveText("Fetch");
  const timeline = page.getByTestId("stage-timeline");
  await expect(timeline.locator('[data-stage="Fetch"]')).toHaveAttribute("data-state", "running");

  // The pipeline moves on; the open page follows on its next poll.
  await op(pipeline, token, "updateBatchJob", stage(id, "Preprocess", 15));
  await op(pipeline, token, "updateBatchJob", stage(id, "Dedup", 25));
  await op(pipeline, token, "updateTasks", {
    job_id: id,
    tasks: [{ name: "tech", status: "running", articles: 12, message: "clustering" }],
  });
  await expect(page.getByTestId("job-phase")).toHaveText("Dedup");
  await expect(timeline.locator('[data-stage="Fetch"]')).toHaveAttribute("data-state", "done");
  await expect(timeline.locator('[data-stage="Dedup"]')).toHaveAttribute("data-state", "running");
  await expect(page.locator('tr[data-task="tech"] .status')).toHaveAttribute("data-status", "running");
  await page.screenshot({ path: "test-results/screens/job.png", fullPage: true });

  // A viewer sees the same page without the buttons.
  const viewerContext = await browser.newContext({
    storageState: { cookies: [], origins: [] },
    extraHTTPHeaders: { Authorization: `Bearer ${viewerToken}` },
  });
  const viewer = await viewerContext.newPage();
  const viewerProblems = watchConsole(viewer);
  await viewer.goto(`/jobs/${id}`);
  await waitForHydration(viewer);
  await expect(viewer.getByTestId("job-phase")).toHaveText("Dedup");
  await expect(viewer.getByTestId("job-actions")).toHaveCount(0);
  expect(viewerProblems).toEqual([]);
  await viewerContext.close();

  // The operator (here the admin) cancels; the pipeline learns on its next call.
  await page.getByTestId("job-actions").locator('[data-action="cancel"]').click();
  await expect(page.locator(".job-head .status")).toHaveAttribute("data-status", "cancelled");
  const next = await op(pipeline, token, "updateBatchJob", stage(id, "Genre", 40));
  expect(next.status).toBe(409);
  expect(next.body.current_status).toBe("cancelled");
  await expect(page.getByTestId("job-events")).toContainText("running → cancelled");
  expect(problems).toEqual([]);
});

test("the workers page lists a worker that asked and its queue, and a waiting task says why", async ({ page }) => {
  const token = await createToken(page, "operator");
  const problems = watchConsole(page);
  const api = await http.newContext({
    baseURL: test.info().project.use.baseURL,
    storageState: { cookies: [], origins: [] },
  });
  const queue = `e2e-${Date.now()}`;
  const created = await op(api, token, "createJob", {
    product_id: "p", sending_group_id: "g", driver: "dispatched", queue, max_parallel_tasks: 1,
    tasks: [{ name: "first" }, { name: "second" }],
  });
  expect(created.status).toBe(201);
  const id: string = created.body.data.id;
  const claimed = await op(api, token, "claimTasks", {
    worker_id: "e2e-worker", queues: [queue], capacity: { memory_mb: 2048, cpus: 2 },
  });
  expect(claimed.body.data.tasks.length).toBe(1);

  await page.goto("/workers");
  await waitForHydration(page);
  const worker = page.getByTestId("workers").locator("tr", { hasText: "e2e-worker" });
  await expect(worker).toContainText(queue);
  await expect(worker).toContainText("2048");
  await expect(page.getByTestId("queues").locator("tr", { hasText: queue })).toBeVisible();
  await page.screenshot({ path: "test-results/screens/workers.png", fullPage: true });

  await page.goto(`/jobs/${id}`);
  await waitForHydration(page);
  await expect(page.locator('tr[data-task="second"] [data-testid="waiting-why"]')).toContainText("1/1 running");
  await page.screenshot({ path: "test-results/screens/job-dispatched.png", fullPage: true });
  expect(problems).toEqual([]);
});

test("the jobs list filters by status and day, counts what it selects, and its URL shares the view", async ({ page, browser }) => {
  const token = await createToken(page, "operator");
  const problems = watchConsole(page);
  const api = await http.newContext({
    baseURL: test.info().project.use.baseURL,
    storageState: { cookies: [], origins: [] },
  });
  // This run's own user, so other tests' jobs stay out of the counts.
  const user = `e2e-history-${Date.now()}`;
  const ids: Record<string, string> = {};
  for (const [name, end] of [["failed-1", "failed"], ["failed-2", "failed"], ["done", "completed"], ["waiting", null]] as const) {
    const created = await op(api, token, "createJob", { kind: "recap", user_id: user });
    expect(created.status).toBe(201);
    ids[name] = created.body.data.id;
    if (end) {
      expect((await op(api, token, "updateBatchJob", stage(ids[name], "Fetch", 50))).status).toBe(200);
      const finished = await op(api, token, "updateBatchJob", {
        job_id: ids[name],
        status: end,
        ...(end === "failed" ? { error_details: { code: "TIMEOUT", message: "the feed did not answer" } } : {}),
      });
      expect(finished.status).toBe(200);
    }
  }

  await page.goto(`/jobs?user=${user}`);
  await waitForHydration(page);
  await expect(page.getByTestId("aggregate-total").locator("dd")).toHaveText("4");
  const form = page.getByTestId("job-filters");
  await form.locator('input[name="status"][value="failed"]').check();
  const today = new Date().toISOString().slice(0, 10);
  await form.locator('input[name="from"]').fill(today);
  await form.locator('input[name="to"]').fill(today);
  await form.getByRole("button").click();
  await expect(page).toHaveURL(/status=failed/);
  await expect(page).toHaveURL(new RegExp(`from=${today}&to=${today}`));
  const rows = page.locator("[data-testid=jobs-table] tbody tr");
  await expect(rows).toHaveCount(2);
  await expect(page.locator(`tr[data-job-id="${ids["failed-1"]}"]`)).toBeVisible();
  await expect(page.locator(`tr[data-job-id="${ids["failed-2"]}"]`)).toBeVisible();
  await expect(page.getByTestId("aggregate-total").locator("dd")).toHaveText("2");
  await expect(page.getByTestId("aggregate-errors").locator("dd")).toHaveText("100.0 %");
  await page.screenshot({ path: "test-results/screens/jobs-filtered.png", fullPage: true });

  // The URL is the view: opened by someone else, it shows the same jobs and figures.
  const shared = page.url();
  const viewerToken = await createToken(page, "viewer");
  const other = await browser.newContext({
    storageState: { cookies: [], origins: [] },
    extraHTTPHeaders: { Authorization: `Bearer ${viewerToken}` },
  });
  const colleague = await other.newPage();
  const colleagueProblems = watchConsole(colleague);
  await colleague.goto(shared);
  await waitForHydration(colleague);
  await expect(colleague.locator("[data-testid=jobs-table] tbody tr")).toHaveCount(2);
  await expect(colleague.getByTestId("aggregate-total").locator("dd")).toHaveText("2");
  await expect(colleague.getByTestId("job-filters").locator('input[name="status"][value="failed"]')).toBeChecked();
  // Sorting by a header keeps the filters.
  await colleague.locator('th a[data-sort="priority"]').click();
  await expect(colleague).toHaveURL(/sort=priority/);
  await expect(colleague).toHaveURL(/status=failed/);
  await expect(colleague.locator("[data-testid=jobs-table] tbody tr")).toHaveCount(2);
  expect(colleagueProblems).toEqual([]);
  await other.close();
  expect(problems).toEqual([]);
});
