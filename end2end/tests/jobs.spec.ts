import { expect, request as http, test, type APIRequestContext, type Page } from "@playwright/test";
import { waitForHydration, watchConsole } from "./helpers";

/** A new token of `role`, made on the tokens page as an admin would. */
async function createToken(page: Page, role: "operator" | "viewer"): Promise<string> {
  await page.goto("/admin/tokens");
  await waitForHydration(page);
  const form = page.getByTestId("create-token");
  await form.locator('input[name="name"]').fill(`e2e-${role}-${Date.now()}`);
  await form.locator('select[name="role"]').selectOption(role);
  await form.getByRole("button").click();
  const shown = page.getByTestId("new-token").locator("code");
  await expect(shown).toHaveText(/^jd_/);
  return (await shown.textContent())!;
}

async function op(request: APIRequestContext, token: string, action: string, data: object) {
  const route = ["addTasks", "updateTasks", "recordArticles", "claimTasks", "heartbeat", "completeTasks", "failTasks"].includes(action)
    ? "/task-operations"
    : "/job-operations";
  const response = await request.post(route, {
    headers: { Authorization: `Bearer ${token}` },
    data: { action, data },
  });
  return { status: response.status(), body: await response.json() };
}

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
